"""In-process tests of image/convert.py: wire header swapping and what each target loses."""

from __future__ import annotations

from xsmig_daemon.image.convert import ImageConverter
from xsmig_daemon.image.profiles import SPEC, XEN_4_17, XEN_4_21
from xsmig_daemon.image.records import (
    DEPTH_UNLIMITED,
    ConnectionData,
    DomainData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    RingSpec,
    SocketSpec,
    TransactionData,
    UnknownRecord,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.wire.header import swap_wire_messages

# XS_READ (2), req_id 0x01020304, tx_id 5, len 4, payload "/a\0\0" -- little then big endian.
READ_LE = bytes.fromhex("02000000 04030201 05000000 04000000") + b"/a\0\0"
READ_BE = bytes.fromhex("00000002 01020304 00000005 00000004") + b"/a\0\0"
# XS_WATCH_EVENT (15), req 0, tx 0, len 7: "/a\0tok\0"
EVENT_LE = bytes.fromhex("0f000000 00000000 00000000 07000000") + b"/a\0tok\0"
EVENT_BE = bytes.fromhex("0000000f 00000000 00000000 00000007") + b"/a\0tok\0"

LE, BE = Header(1, False), Header(1, True)


def test_swap_complete_messages_both_ways() -> None:
    result = swap_wire_messages(READ_LE + EVENT_LE, source_big=False)
    assert result.data == READ_BE + EVENT_BE and result.dropped == 0
    back = swap_wire_messages(READ_BE + EVENT_BE, source_big=True)
    assert back.data == READ_LE + EVENT_LE and back.dropped == 0


def test_swap_message_with_incomplete_payload() -> None:
    result = swap_wire_messages(READ_LE[:18], source_big=False)
    assert result.data == READ_BE[:18] and result.dropped == 0


def test_swap_partial_header_on_a_field_boundary_converts_whole_fields() -> None:
    result = swap_wire_messages(EVENT_LE + READ_LE[:8], source_big=False)
    assert result.data == EVENT_BE + READ_BE[:8] and result.dropped == 0


def test_swap_partial_header_inside_a_field_is_dropped() -> None:
    result = swap_wire_messages(EVENT_LE + READ_LE[:7], source_big=False)
    assert result.data == EVENT_BE and result.dropped == 7


def test_connection_pending_data_and_reply_remainder() -> None:
    conn = ConnectionData(
        3, SocketSpec(9), in_data=READ_LE, out_data=b"ok\0" + EVENT_LE, out_resp_len=3
    )
    converter = ImageConverter(LE, BE, SPEC)
    out = converter.convert(conn)
    assert out == ConnectionData(3, SocketSpec(9), READ_BE, EVENT_BE, 0, None)
    assert converter.report.losses.lines() == [
        "1 partly sent reply remainder (3 bytes on conn 3 (socket fd 9))"
    ]


def test_same_byte_order_keeps_pending_data_verbatim() -> None:
    conn = ConnectionData(3, SocketSpec(9), READ_LE[:7], b"xy" + EVENT_LE, out_resp_len=2)
    converter = ImageConverter(LE, Header(2, False), SPEC)
    assert converter.convert(conn) is conn
    assert not converter.report.losses


def test_version_1_turns_unlimited_extended_watch_into_plain_watch() -> None:
    converter = ImageConverter(Header(2, False), LE, SPEC)
    watch = WatchDataExtended(1, "/a", "t", DEPTH_UNLIMITED)
    assert converter.convert(watch) == WatchData(1, "/a", "t")
    assert not converter.report.losses
    assert converter.convert(WatchDataExtended(1, "/b", "u", 2)) == WatchData(1, "/b", "u")
    assert converter.report.losses.counts == {"watch-depth": 1}


def test_version_1_drops_domain_features_only() -> None:
    converter = ImageConverter(Header(2, False), LE, SPEC)
    assert converter.convert(DomainData(3, 14, (("nodes", 10),))) == DomainData(
        3, 0, (("nodes", 10),)
    )
    assert converter.report.losses.lines() == ["1 domain feature set (dom3 0xe)"]


def test_xen_4_17_losses() -> None:
    converter = ImageConverter(Header(2, False), LE, XEN_4_17)
    ring = ConnectionData(1, RingSpec(0, evtchn=2), unique_id=7)
    assert converter.convert(ring) == ConnectionData(1, RingSpec(0, evtchn=2))
    assert converter.convert(TransactionData(1, 4)) is None
    tx_node = NodeData("/x", b"v", (Permission("n", 0),), 1, 4, NodeAccess.WRITTEN)
    assert converter.convert(tx_node) is None
    assert converter.convert(GlobalQuotaData((("nodes", 2000),))) is None
    assert converter.convert(DomainData(0, 0, (("watches", 5),))) is None
    committed = NodeData("/x", b"v")
    assert converter.convert(committed) is committed
    assert dict(converter.report.losses.counts) == {
        "unique-id": 1,
        "transaction": 1,
        "transaction-node": 1,
        "global-quota": 1,
        "domain-data": 1,
    }
    assert converter.report.losses.lines()[1] == "1 open transaction (tx 4 on conn 1 (ring dom0))"


def test_xen_4_21_keeps_unique_id_and_domains() -> None:
    converter = ImageConverter(Header(2, False), Header(2, False), XEN_4_21)
    ring = ConnectionData(1, RingSpec(0, evtchn=2), unique_id=7)
    assert converter.convert(ring) is ring
    assert converter.convert(DomainData(0, 14)) == DomainData(0, 14)
    assert converter.convert(GlobalQuotaData(global_quotas=(("memory", 1),))) is None
    assert converter.report.losses.counts == {"global-quota": 1}


def test_records_holding_only_the_loaders_defaults_are_not_losses() -> None:
    """4.17 and 4.20 start with C xenstored's default quotas (xenstored_core.c of 4.17,
    domain.c of 4.20: nodes 1000, watches 128, ...): a record saying just that is omitted."""
    converter = ImageConverter(Header(2, False), LE, XEN_4_17)
    defaults = (("nodes", 1000), ("watches", 128), ("outstanding", 20), ("memory", 2621440))
    assert converter.convert(GlobalQuotaData(defaults)) is None
    assert converter.convert(DomainData(0, 0, defaults)) is None
    assert converter.convert(DomainData(5)) is None
    assert not converter.report.losses
    assert dict(converter.report.omitted.counts) == {
        "default-global-quota": 1,
        "default-domain-data": 2,
    }
    # Any feature, override or unknown quota is a loss.
    assert converter.convert(DomainData(6, 1)) is None
    assert converter.convert(DomainData(7, 0, (("nodes", 999),))) is None
    assert converter.convert(GlobalQuotaData((("frobs", 1),))) is None
    assert dict(converter.report.losses.counts) == {"domain-data": 2, "global-quota": 1}


def test_unknown_records_survive_unless_the_byte_order_changes() -> None:
    record = UnknownRecord(9, b"\1\0\0\0")
    assert ImageConverter(LE, Header(2, False), SPEC).convert(record) is record
    converter = ImageConverter(LE, BE, SPEC)
    assert converter.convert(record) is None
    assert converter.report.losses.counts == {"unknown-record": 1}
