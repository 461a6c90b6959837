"""The xen-4.22 loader profile: what Xen 4.22.0's lu_read_state needs and refuses.

Each rule is from 4.22's source (tools/xenstored/lu.c, domain.c, watch.c at RELEASE-4.22.0)
and was seen on the real daemon (tests/data/xen-4.22/README.md, docs/upstream.md).
"""

from __future__ import annotations

import pytest

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.errors import ImageError, ProfileError
from xsmig_daemon.image.profiles import PROFILES, XEN_4_21, XEN_4_22
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeData,
    Record,
    RecordType,
    RingSpec,
    SocketSpec,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.image.validate import validate_records

V1, V2 = Header(1), Header(2)
GLOBAL = GlobalData(4, 3)
QUOTA = GlobalQuotaData((("nodes", 2000),))
DOM0 = ConnectionData(1, RingSpec(0, evtchn=1), unique_id=1)
CLIENT = ConnectionData(2, SocketSpec(7))
ROOT = NodeData("/")


def check(records: list[Record], header: Header = V2, profile: str = "xen-4.22") -> list[str]:
    data = b"".join(encode_image(records, header, watch_ext_layout="xen-4.22"))
    decoded_header, located = decode_image(data)
    return validate_records(located, decoded_header, profile)


def refused(records: list[Record], header: Header = V2, profile: str = "xen-4.22") -> ImageError:
    with pytest.raises(ImageError) as caught:
        check(records, header, profile)
    assert "\n" not in str(caught.value)
    return caught.value


def test_the_profile_is_in_the_version_table() -> None:
    assert PROFILES["xen-4.22"] is XEN_4_22
    assert XEN_4_22.versions == {1, 2} and XEN_4_22.little_endian_only
    assert {6, 7, 8} <= XEN_4_22.record_types
    assert RecordType.TRANSACTION_DATA not in XEN_4_22.record_types  # C ignores it


def test_a_4_22_live_update_image_with_everything_it_keeps() -> None:
    records: list[Record] = [
        GLOBAL,
        QUOTA,
        DOM0,
        CLIENT,
        WatchData(2, "/vm", "tok"),
        WatchDataExtended(2, "/d", "t", 1),
        ROOT,
        NodeData("/d"),
        DomainData(0, 14, (("nodes", 1000),)),
        End(),
    ]
    assert check(records) == []


def test_global_quota_is_kept_by_4_22_and_dropped_by_4_21() -> None:
    # 4.21's lu_read_state (RELEASE-4.21.0 to 4.21.2) has no case for type 6: it skips it.
    records: list[Record] = [GLOBAL, QUOTA, DOM0, ROOT, End()]
    assert check(records) == []
    assert RecordType.GLOBAL_QUOTA_DATA not in XEN_4_21.record_types
    assert any("GLOBAL_QUOTA_DATA" in w for w in check(records, profile="xen-4.21"))


def test_dom0_ring_must_precede_every_watch() -> None:
    error = refused([GLOBAL, CLIENT, WatchData(2, "/vm", "t"), DOM0, ROOT, End()])
    assert isinstance(error, ProfileError)
    assert error.record_index == 2 and "dom0's ring" in error.reason


def test_the_listening_socket_fd_is_needed() -> None:
    error = refused([GlobalData(-1, 3), DOM0, ROOT, End()])
    assert error.record_index == 0 and "listening socket" in error.reason


def test_dom0_domain_record_must_keep_watchdepth() -> None:
    error = refused([GLOBAL, DOM0, ROOT, DomainData(0, 0), End()])
    assert error.record_index == 3 and "WATCHDEPTH" in error.reason
    # In a version-1 stream 4.22 ignores the features: nothing is taken from dom0.
    assert check([GLOBAL, DOM0, ROOT, DomainData(0, 0), End()], V1) != []


def test_domain_record_only_for_a_domain_the_loader_knows() -> None:
    error = refused([GLOBAL, DOM0, ROOT, DomainData(3, 14), End()])
    assert error.record_index == 3 and "domain 3" in error.reason
    owned = NodeData("/vm", perms=NodeData("/").perms)
    assert check([GLOBAL, DOM0, ROOT, owned, DomainData(0, 14), End()]) == []


def test_version_1_streams_with_version_2_records_load_with_a_warning() -> None:
    records: list[Record] = [GLOBAL, QUOTA, DOM0, ROOT, DomainData(0, 0), End()]
    (warning,) = check(records, V1)
    assert "version-1 stream with 2 record(s) of types 6-8" in warning
    # The format itself reserves type 8 for version 2.
    data = b"".join(encode_image([GLOBAL, DOM0, ROOT, End()], V1))
    _, located = decode_image(data)
    assert validate_records(located, V1, "spec") == []
