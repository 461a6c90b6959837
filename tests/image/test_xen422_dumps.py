"""What a real Xen 4.22.0 xenstored wrote into its live-update dumps, read by xsmig.

The dumps and their references (tests/data/xen-4.22/, tests/xen422_data.py) come from the real
daemon; see that folder's README for how each was made. The live checks against 4.22 itself
(its loader taking what xsmig repaired) are tests/data/xen-4.22/live_check.py, run in a
developer session.
"""

from __future__ import annotations

import pytest
from xen422_data import DUMPS, NAMES, dump, facts, listing, walk_422, watch_strings

from xsmig_daemon.image.convert import ImageConverter
from xsmig_daemon.image.decoder import ImageDecoder, decode_image
from xsmig_daemon.image.encoder import RecordEncoder, encode_image
from xsmig_daemon.image.errors import ProfileError, SemanticError
from xsmig_daemon.image.profiles import DUMP_SOURCE, XEN_4_22
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalQuotaData,
    Header,
    NodeData,
    RingSpec,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.image.validate import StreamValidator, validate_records

#: (path_len + token_len) % 8 classes whose record 4.22 declares 8 bytes longer than written
LONG_CLASSES = {0, 5, 6, 7}


@pytest.mark.parametrize("name", DUMPS)
def test_every_dump_decodes_and_reencodes_byte_for_byte(name: str) -> None:
    data = dump(name)
    decoder = ImageDecoder()
    decoder.feed(data)
    located = list(decoder.records())
    assert decoder.header is not None
    encoded = b"".join(encode_image([item.record for item in located], decoder.header))
    if name == "depth-ok-second":
        # 4.22 left 4 heap bytes in GLOBAL_QUOTA_DATA's padding (160-byte body, 156 used):
        # accepted and listed, written back as zeros.
        assert decoder.dirty_padding == [(1, 32)]
        pad = 32 + 8 + 156
        assert data[pad : pad + 4] != bytes(4)
        data = data[:pad] + bytes(4) + data[pad + 4 :]
    else:
        assert decoder.dirty_padding == []
    assert encoded == data
    # The decoder found the same record boundaries as a struct-only walk of 4.22's rules.
    assert [item.offset for item in located] == [frame.offset for frame in walk_422(data)]


@pytest.mark.parametrize("name", [*NAMES, *(f"{n}-v1" for n in NAMES)])
def test_committed_nodes_are_what_xenstore_ls_showed(name: str) -> None:
    _, located = decode_image(dump(name))
    nodes = {
        r.path: (r.value.decode(), ",".join(str(p) for p in r.perms))
        for item in located
        if isinstance(r := item.record, NodeData) and r.path.startswith("/") and r.path != "/"
    }
    assert nodes == listing(name)


@pytest.mark.parametrize("name", [*NAMES, *(f"{n}-v1" for n in NAMES)])
def test_depth_watches_come_back_without_their_depth_and_with_the_declared_len(
    name: str,
) -> None:
    registered = facts(name)["watches"]
    _, located = decode_image(dump(name))
    watches = [
        r for item in located if isinstance(r := item.record, WatchData | UnwrittenDepthWatch)
    ]
    assert [(w.path, w.token) for w in watches] == [(w["path"], w["token"]) for w in registered]
    for watch, wanted in zip(watches, registered, strict=True):
        if wanted["depth"] is None:
            assert isinstance(watch, WatchData)
            continue
        assert isinstance(watch, UnwrittenDepthWatch)
        residue = (len(watch.path) + 1 + len(watch.token) + 1) % 8
        assert residue == wanted["class"]
        assert watch.declared_len - watch.written_len == (8 if residue in LONG_CLASSES else 0)


def test_the_writer_layout_is_decoded_from_where_4_22_wrote_the_strings() -> None:
    data = dump("watches")
    ext = [frame for frame in walk_422(data) if frame.type == 8]
    assert len(ext) == 8
    _, located = decode_image(data)
    decoded = [item.record for item in located if isinstance(item.record, UnwrittenDepthWatch)]
    assert [(w.path, w.token) for w in decoded] == [watch_strings(f) for f in ext]
    assert [w.declared_len for w in decoded] == [f.declared for f in ext]


def test_the_second_dump_shows_the_watches_4_22_restored_wrongly() -> None:
    # depth-ok.img restored "successfully": its watches /d/cN token tN... came back shifted
    # by two bytes (4.22's loader reads wpath at body offset 10), as 4.22's next dump shows.
    _, located = decode_image(dump("depth-ok-second"))
    watches = [(r.path, r.token) for i in located if isinstance(r := i.record, UnwrittenDepthWatch)]
    assert watches == [("/c1", ""), ("/c2", "x"), ("/c3", "xx"), ("/c4", "xxx")]
    assert facts("depth-ok")["second_update"] == "died: FATAL: Inconsistent state data"


@pytest.mark.parametrize("name", NAMES)
def test_version_1_dumps_hold_version_2_records_as_the_profile_says(name: str) -> None:
    quirks = XEN_4_22.dump
    assert quirks is not None and quirks.v1_holds_v2_records
    header, located = decode_image(dump(f"{name}-v1"))
    assert header.version == 1
    types = {item.record.type for item in located}
    assert {6, 7} <= types
    rings = [r for i in located if isinstance(r := i.record, ConnectionData)]
    assert all(r.unique_id is not None for r in rings if isinstance(r.spec, RingSpec))
    # Only the DOMAIN_DATA features differ from the -v 2 dump (0 in version 1).
    _, v2 = decode_image(dump(name))
    assert [i.record for i in located if not isinstance(i.record, DomainData)] == [
        i.record for i in v2 if not isinstance(i.record, DomainData)
    ]
    domains = [i.record for i in located if isinstance(i.record, DomainData)]
    assert all(r.features == 0 for r in domains)


def test_domains_dump_holds_the_quotas_and_features_the_daemon_reported() -> None:
    reported = facts("domains")
    _, located = decode_image(dump("domains"))
    records = [item.record for item in located]
    (global_quota,) = [r for r in records if isinstance(r, GlobalQuotaData)]
    quotas = dict(global_quota.domain_quotas)
    assert (quotas["nodes"], quotas["soft-memory"]) == (2000, 3000000)
    assert "2000 Nodes per domain" in " ".join(reported["global_quota"].split())
    domains = {r.domid: r for r in records if isinstance(r, DomainData)}
    assert {d: str(domains[d].features) for d in (0, 1, 2)} == {
        int(d): f for d, f in reported["features"].items()
    }
    assert str(dict(domains[1].quotas)["nodes"]) == reported["domain_quotas"]["dom1 nodes"]
    assert str(dict(domains[2].quotas)["watches"]) == reported["domain_quotas"]["dom2 watches"]
    partial = [r for r in records if isinstance(r, ConnectionData) and r.in_data]
    assert [r.in_data for r in partial] == [bytes.fromhex("02000000090000")]


def test_unintroduced_domain_death_is_a_domain_record_no_earlier_record_explains() -> None:
    assert facts("unintroduced")["self_restore"] == "died: FATAL: referenced domain not found"
    header, located = decode_image(dump("unintroduced"))
    validator = StreamValidator(header, XEN_4_22, collect_defects=True)
    for item in located:
        validator.check(item)
    (defect,) = validator.defects
    assert isinstance(defect, SemanticError)
    assert defect.record_index == 13 and defect.offset == 672
    assert "domain 3" in str(defect)


@pytest.mark.parametrize("name", ["watches", "watches-v1", "domains"])
def test_validation_names_every_broken_watch_record(name: str) -> None:
    data = dump(name)
    header, located = decode_image(data)
    validator = StreamValidator(header, XEN_4_22, collect_defects=True)
    for item in located:
        validator.check(item)
    frames = [f for f in walk_422(data) if f.type == 8]
    assert [(d.record_index, d.offset) for d in validator.defects] == [
        (next(i.index for i in located if i.offset == f.offset), f.offset) for f in frames
    ]
    assert all(isinstance(d, ProfileError) for d in validator.defects)
    for defect, frame in zip(validator.defects, frames, strict=True):
        assert "depth was never written" in str(defect)
        assert ("loses the record boundary" in str(defect)) == (frame.declared != frame.written)
    with pytest.raises(ProfileError):
        validate_records(located, header, XEN_4_22)  # without collecting: the first one


@pytest.mark.parametrize("name", [*NAMES, *(f"{n}-v1" for n in NAMES)])
def test_conversion_for_4_22_repairs_what_its_loader_would_refuse(name: str) -> None:
    header, located = decode_image(dump(name))
    source = StreamValidator(header, DUMP_SOURCE, collect_defects=True)
    for item in located:
        source.check(item)  # a well-ordered stream apart from what is repaired
    converter = ImageConverter(header, header, XEN_4_22)
    out = [r for item in located if (r := converter.convert(item.record)) is not None]
    encoded = b"".join(encode_image(out, header, watch_ext_layout=XEN_4_22.watch_ext_layout))
    header2, again = decode_image(encoded)
    warnings = validate_records(again, header2, XEN_4_22)
    assert all("version-1 stream" in w for w in warnings) and (header.version == 1) == bool(
        warnings
    )
    watches = [(r.path, r.token) for i in again if isinstance(r := i.record, WatchData)]
    assert watches == [(w["path"], w["token"]) for w in facts(name)["watches"]]
    assert not any(isinstance(i.record, WatchDataExtended) for i in again)
    depth_watches = sum(1 for w in facts(name)["watches"] if w["depth"] is not None)
    assert converter.report.repairs.counts.get("unwritten-depth", 0) == depth_watches
    dropped = converter.report.repairs.counts.get("unknown-domain", 0)
    assert dropped == (1 if name.startswith("unintroduced") else 0)
    assert not converter.report.losses


def test_xsmig_writes_depth_watches_for_4_22_in_the_layout_its_loader_parses() -> None:
    # 4.22's struct xs_state_watch_ext: depth u16 at body offset 8, data[] (wpath) at 10.
    watch = WatchDataExtended(2, "/vm", "tok2", 3)
    encoded = RecordEncoder(Header(2), watch_ext_layout="xen-4.22").encode(watch)
    assert encoded.hex(" ") == (
        "08 00 00 00 18 00 00 00 02 00 00 00 04 00 05 00 "
        "03 00 2f 76 6d 00 74 6f 6b 32 00 00 00 00 00 00"
    )
    _, located = decode_image(
        bytes.fromhex("78656e73746f7265 00000002 00000000") + encoded + bytes(8)
    )
    assert located[0].record == watch
