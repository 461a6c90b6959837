"""Semantic validation (spec section 6) and the loader profiles (sections 2, 9)."""

from __future__ import annotations

import pytest
from golden_vectors import END_LE, HEADER_V1_LE, HEADER_V2_LE, unhex

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.errors import ImageError, ProfileError, SemanticError
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Record,
    RingSpec,
    SocketSpec,
    TransactionData,
    UnknownRecord,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.image.validate import validate_records

V1 = Header(1, False)
V2 = Header(2, False)

GLOBAL = GlobalData(3, 4)
DOM0 = ConnectionData(1, RingSpec(domid=0, evtchn=1))
ROOT = NodeData("/")
LOCAL = NodeData("/local")


def written(records: list[Record], header: Header = V1) -> bytes:
    return b"".join(encode_image(records, header))


def check(data: bytes, profile: str = "spec") -> list[str]:
    """Validate both ways (decoded list, streaming reader); return the warnings."""
    header, located = decode_image(data)
    warnings = validate_records(located, header, profile)
    streamed_warnings: list[str] = []
    chunks = [data[i : i + 5] for i in range(0, len(data), 5)]
    assert list(read_image(chunks, profile, streamed_warnings)) == located
    assert streamed_warnings == warnings
    return warnings


def rejected(data: bytes, kind: type[ImageError], profile: str = "spec") -> ImageError:
    header, located = decode_image(data)
    with pytest.raises(kind) as listed:
        validate_records(located, header, profile)
    with pytest.raises(kind) as streamed:
        list(read_image([data[i : i + 3] for i in range(0, len(data), 3)], profile))
    assert str(streamed.value) == str(listed.value)
    message = str(listed.value)
    assert "\n" not in message
    assert "byte" in message
    return listed.value


def assert_names_record(error: ImageError, data: bytes, index: int) -> None:
    _, located = decode_image(data)
    offset = located[index].offset
    message = str(error)
    assert (error.record_index, error.offset) == (index, offset), message
    assert f"record {index}" in message
    assert f"byte {offset}" in message


# ---- valid streams -------------------------------------------------------------------------


def test_minimal_valid_streams() -> None:
    assert check(written([End()])) == []
    assert check(written([ROOT, LOCAL, End()])) == []


def test_a_full_live_update_stream_is_valid_for_every_profile() -> None:
    records: list[Record] = [
        GLOBAL,
        DOM0,
        WatchData(1, "/local", "tok"),
        WatchData(1, "name", "relative"),
        ConnectionData(2, SocketSpec(9), out_data=bytes(16) + b"OK\0"),
        WatchData(2, "@introduceDomain", "intro"),
        ConnectionData(3, RingSpec(1, 0x7FF4, 11)),
        NodeData("@releaseDomain"),
        NodeData("@introduceDomain", perms=(Permission("n", 0), Permission("r", 1))),
        ROOT,
        LOCAL,
        NodeData("/local/domain"),
        NodeData("/local/domain/1", perms=(Permission("n", 1), Permission("r", 0))),
        NodeData("/local/domain/1/name", b"guest"),
        NodeData("/tool"),
        End(),
    ]
    for profile in ("spec", "xen-4.17", "xen-4.20", "xen-4.21"):
        assert check(written(records), profile) == []


def test_a_c_loader_needs_the_ring_of_every_node_owner() -> None:
    """Real 4.17 and 4.20 exit restoring a node whose owner has no ring connection."""
    records: list[Record] = [
        GLOBAL,
        DOM0,
        ROOT,
        LOCAL,
        NodeData("/local/domain"),
        NodeData("/local/domain/1", perms=(Permission("n", 1),)),
        End(),
    ]
    assert check(written(records), "spec") == []
    for profile in ("xen-4.17", "xen-4.20"):
        error = rejected(written(records), ProfileError, profile)
        assert "'/local/domain/1' is owned by domain 1, which has no ring" in str(error)
        assert_names_record(error, written(records), 5)


def test_transaction_nodes_need_no_parent_and_may_repeat_committed_paths() -> None:
    records: list[Record] = [
        DOM0,
        TransactionData(1, 7),
        NodeData("/x/y/z", b"v", conn_id=1, tx_id=7, access=NodeAccess.WRITTEN),
        NodeData("/local", b"", conn_id=1, tx_id=7, access=NodeAccess.READ),
        NodeData("/gone", b"", (), conn_id=1, tx_id=7, access=NodeAccess.DELETED),
        ROOT,
        LOCAL,
        End(),
    ]
    assert check(written(records)) == []


def test_domain_known_from_ring_tdomid_or_node_owner() -> None:
    records: list[Record] = [
        ConnectionData(1, RingSpec(domid=4, tdomid=6)),
        ROOT,
        NodeData("/d", perms=(Permission("n", 9),)),
        DomainData(4),
        DomainData(6),
        DomainData(9, features=14, quotas=(("nodes", 10),)),
        End(),
    ]
    assert check(written(records, V2)) == []


# ---- section 6 violations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "index", "words"),
    [
        pytest.param([ROOT, NodeData("/a/b"), End()], 1, "parent", id="child-before-parent"),
        pytest.param(
            [ROOT, NodeData("/a/b"), NodeData("/a"), End()], 1, "parent", id="child-then-parent"
        ),
        pytest.param([DOM0, WatchData(2, "/a", "t"), End()], 1, "conn", id="watch-unknown-conn"),
        pytest.param([WatchData(1, "/a", "t"), DOM0, End()], 0, "conn", id="watch-before-conn"),
        pytest.param(
            [DOM0, ConnectionData(1, SocketSpec(5)), End()], 1, "duplicate", id="duplicate-conn"
        ),
        pytest.param([ConnectionData(0, SocketSpec(5)), End()], 0, "0", id="conn-id-0"),
        pytest.param([ROOT, LOCAL, LOCAL, End()], 2, "duplicate", id="duplicate-path"),
        pytest.param([ROOT, LOCAL, ROOT, End()], 2, "", id="second-root"),
        pytest.param(
            [NodeData("@releaseDomain"), NodeData("@releaseDomain"), End()],
            1,
            "duplicate",
            id="duplicate-special",
        ),
        pytest.param([LOCAL, ROOT, End()], 0, "'/'", id="root-not-first"),
        pytest.param([NodeData("/a"), End()], 0, "'/'", id="no-root"),
        pytest.param([DOM0, DomainData(7), End()], 1, "domain", id="domain-unknown"),
        pytest.param([DomainData(0), DOM0, End()], 0, "domain", id="domain-before-conn"),
        pytest.param([DOM0, DomainData(0), DomainData(0), End()], 2, "second", id="domain-twice"),
        pytest.param([TransactionData(1, 1), End()], 0, "conn", id="tx-unknown-conn"),
        pytest.param(
            [DOM0, TransactionData(1, 1), TransactionData(1, 1), End()],
            2,
            "duplicate",
            id="tx-twice",
        ),
        pytest.param(
            [DOM0, NodeData("/a", conn_id=1, tx_id=3, access=NodeAccess.READ), End()],
            1,
            "TRANSACTION_DATA",
            id="tx-node-before-tx",
        ),
        pytest.param(
            [NodeData("/a", conn_id=5, tx_id=3, access=NodeAccess.READ), End()],
            0,
            "conn",
            id="tx-node-unknown-conn",
        ),
        pytest.param(
            [DOM0, TransactionData(1, 3), NodeData("/a", conn_id=1, tx_id=3), End()],
            2,
            "deleted",
            id="deleted-tx-node-with-perms",
        ),
        pytest.param([DOM0, GLOBAL, End()], 1, "GLOBAL_DATA", id="global-after-conn"),
        pytest.param([GLOBAL, GLOBAL, End()], 1, "GLOBAL_DATA", id="global-twice"),
        pytest.param(
            [GlobalQuotaData(), GlobalQuotaData(), End()], 1, "GLOBAL_QUOTA", id="quota-twice"
        ),
        pytest.param([NodeData("/", perms=()), End()], 0, "perm", id="node-without-perms"),
        pytest.param([ROOT, NodeData("/a/"), End()], 1, "path", id="trailing-slash"),
        pytest.param([ROOT, NodeData("//a"), End()], 1, "path", id="double-slash"),
        pytest.param([ROOT, NodeData("a"), End()], 1, "path", id="relative-node-path"),
    ],
)
def test_dependency_rules(records: list[Record], index: int, words: str) -> None:
    data = written(records)
    error = rejected(data, SemanticError)
    assert_names_record(error, data, index)
    assert words in error.reason


def test_watch_data_extended_in_a_version_1_stream() -> None:
    # The encoder refuses this, so the record is written by hand (doc layout, spec 5.5).
    conn = unhex("02000000 18000000 01000000 0100 0000 07000000 00000000 0000 0000 00000000")
    watch_ext = unhex("08000000 18000000 01000000 0400 0200 0200 0000 2f766d00 7400 000000000000")
    data = HEADER_V1_LE + conn + watch_ext + END_LE
    error = rejected(data, SemanticError)
    assert_names_record(error, data, 1)
    assert "version 1" in error.reason
    # The same bytes under a version-2 header are fine.
    assert check(HEADER_V2_LE + conn + watch_ext + END_LE) == []


def test_semantic_errors_survive_any_chunking() -> None:
    data = written([ROOT, NodeData("/a/b"), End()])
    for size in (1, 2, 7, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        with pytest.raises(SemanticError) as info:
            list(read_image(chunks, "spec"))
        assert info.value.record_index == 1


# ---- loader profiles -----------------------------------------------------------------------

C_OK: list[Record] = [GLOBAL, DOM0, ROOT, LOCAL]


@pytest.mark.parametrize("profile", ["xen-4.17", "xen-4.21"])
def test_c_profiles_refuse_big_endian(profile: str) -> None:
    data = written([*C_OK, End()], Header(1, True))
    assert check(data, "spec") == []
    error = rejected(data, ProfileError, profile)
    assert error.offset == 12


def test_xen_4_17_refuses_version_2_and_4_21_takes_it() -> None:
    data = written([*C_OK, End()], V2)
    error = rejected(data, ProfileError, "xen-4.17")
    assert error.offset == 8
    assert "version" in error.reason
    assert check(data, "xen-4.21") == []


@pytest.mark.parametrize("profile", ["xen-4.17", "xen-4.21"])
@pytest.mark.parametrize(
    ("records", "index"),
    [
        pytest.param([DOM0, ROOT, End()], 0, id="no-global-first"),
        pytest.param([End()], 0, id="only-end"),
        pytest.param([GLOBAL, ROOT, DOM0, End()], 1, id="node-before-dom0-ring"),
        pytest.param(
            [GLOBAL, ConnectionData(1, RingSpec(domid=3)), ROOT, End()], 2, id="no-dom0-ring"
        ),
        pytest.param([GlobalData(3, -1), DOM0, End()], 0, id="no-evtchn-fd"),
        pytest.param(
            [
                GLOBAL,
                DOM0,
                TransactionData(1, 3),
                NodeData("/t", b"v", conn_id=1, tx_id=3, access=NodeAccess.WRITTEN),
                End(),
            ],
            3,
            id="transaction-node",
        ),
    ],
)
def test_what_c_loaders_refuse(records: list[Record], index: int, profile: str) -> None:
    data = written(records)
    error = rejected(data, ProfileError, profile)
    assert_names_record(error, data, index)


def test_watch_data_extended_is_lost_on_4_21() -> None:
    data = written([GLOBAL, DOM0, WatchDataExtended(1, "/a", "t", 1), ROOT, End()], V2)
    assert check(data, "spec") == []
    error = rejected(data, ProfileError, "xen-4.21")
    assert_names_record(error, data, 2)


def test_dropped_records_are_warnings() -> None:
    data = written(
        [
            GLOBAL,
            GlobalQuotaData((("nodes", 1000),)),
            DOM0,
            TransactionData(1, 3),
            TransactionData(1, 4),
            ROOT,
            DomainData(0),
            UnknownRecord(12, bytes(8)),
            End(),
        ]
    )
    spec_warnings = check(data, "spec")  # the design doc knows types 0-8 only
    assert len(spec_warnings) == 1
    assert "12" in spec_warnings[0]
    warnings_417 = check(data, "xen-4.17")
    assert any("2 open transactions" in w and "xen-4.17" in w for w in warnings_417)
    assert any("GLOBAL_QUOTA_DATA" in w for w in warnings_417)
    assert any("DOMAIN_DATA" in w for w in warnings_417)
    assert any("12" in w for w in warnings_417)
    warnings_421 = check(data, "xen-4.21")
    assert not any("DOMAIN_DATA" in w for w in warnings_421)
    assert any("GLOBAL_QUOTA_DATA" in w for w in warnings_421)
    assert all("\n" not in w for w in warnings_417 + warnings_421)


def test_missing_root_is_a_warning_for_c_loaders() -> None:
    data = written([GLOBAL, DOM0, End()])
    assert check(data, "spec") == []
    assert any("'/'" in w for w in check(data, "xen-4.17"))


def test_unknown_profile_name() -> None:
    with pytest.raises(ValueError, match=r"xen-4\.17"):
        list(read_image([written([End()])], "xen-9"))
