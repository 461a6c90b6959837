"""The writer refuses what a stream cannot hold, with EncodeError, and never writes a record
that its own reader would reject."""

from __future__ import annotations

import pytest

from xsmig_daemon.image.encoder import RecordEncoder, encode_image
from xsmig_daemon.image.errors import EncodeError
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

UNREPRESENTABLE: list[tuple[str, Record]] = [
    ("conn-id over u32", ConnectionData(2**32, SocketSpec(1))),
    ("negative conn-id", ConnectionData(-1, SocketSpec(1))),
    ("socket fd over s32", ConnectionData(1, SocketSpec(2**31))),
    ("evtchn over u32", ConnectionData(1, RingSpec(0, evtchn=2**32))),
    ("domid over u16", ConnectionData(1, RingSpec(2**16))),
    ("unique-id over u64", ConnectionData(1, RingSpec(0), unique_id=2**64)),
    ("in-data over u16", ConnectionData(1, RingSpec(0), in_data=bytes(0x10000))),
    ("out-resp-len > out-data", ConnectionData(1, RingSpec(0), out_data=b"ab", out_resp_len=3)),
    ("global fd over s32", GlobalData(2**31, 0)),
    ("tx-id over u32", TransactionData(1, 2**32)),
    ("NUL in wpath", WatchData(1, "/a\0b", "t")),
    ("NUL in token", WatchData(1, "/a", "t\0")),
    ("NUL in ext wpath", WatchDataExtended(1, "/a\0", "t", 1)),
    ("depth over u16", WatchDataExtended(1, "/a", "t", 0x10000)),
    ("NUL in node path", NodeData("/a\0b")),
    ("value over u16", NodeData("/a", bytes(0x10000))),
    ("perm domid over u16", NodeData("/a", perms=(Permission("r", 0x10000),))),
    ("perm letter not a byte", NodeData("/a", perms=(Permission("\u0100", 0),))),
    ("two-letter perm", NodeData("/a", perms=(Permission("rw", 0),))),
    ("node tx-id over u32", NodeData("/a", conn_id=1, tx_id=2**32, access=NodeAccess.READ)),
    ("reserved access bits", NodeData("/a", conn_id=1, tx_id=1, access=NodeAccess(4))),
    ("lone surrogate in path", NodeData("/\ud800")),
    ("quota value over u32", DomainData(1, quotas=(("a", 2**32),))),
    ("NUL in quota name", DomainData(1, quotas=(("a\0b", 1),))),
    ("empty quota name", GlobalQuotaData((("", 1),))),
    ("domain-id over u16", DomainData(2**16)),
    ("features over u32", DomainData(1, features=2**32)),
    ("record type over u32", UnknownRecord(2**32, b"")),
]


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize(("what", "record"), UNREPRESENTABLE, ids=[w for w, _ in UNREPRESENTABLE])
def test_unrepresentable_records_raise_encode_error(
    what: str, record: Record, big_endian: bool
) -> None:
    encoder = RecordEncoder(Header(2, big_endian))
    with pytest.raises(EncodeError) as info:
        encoder.encode(record)
    assert "\n" not in str(info.value)


def test_not_a_record() -> None:
    with pytest.raises(EncodeError):
        RecordEncoder(Header()).encode("END")  # type: ignore[arg-type]


def test_nothing_after_end() -> None:
    with pytest.raises(EncodeError):
        list(encode_image([End(), End()]))


def test_committed_nodes_are_written_without_transaction_fields() -> None:
    # Spec 5.7: tx-id and access "write 0" for committed nodes, whatever the model holds.
    written = RecordEncoder(Header()).encode(NodeData("/", tx_id=9, access=NodeAccess.READ))
    assert written[12:16] == bytes(4)  # tx-id
    assert written[20:22] == bytes(2)  # access
