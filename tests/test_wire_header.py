"""The wire-header codec (wire/header.py): golden vectors from xs_wire.h's layout (four u32:
type, req_id, tx_id, len), round trips, and the message spans of pending data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xsmig_daemon.wire.header import (
    HEADER_SIZE,
    byte_order,
    decode_header,
    encode_header,
    message_spans,
    swap_fields,
)

U32 = st.integers(0, 0xFFFFFFFF)
# READ (2), req-id 7, tx-id 0x0102, 5 payload bytes.
LITTLE = bytes.fromhex("02000000070000000201000005000000")
BIG = bytes.fromhex("00000002000000070000010200000005")


def test_golden_headers() -> None:
    assert encode_header(2, 7, 0x102, 5) == LITTLE
    assert encode_header(2, 7, 0x102, 5, "big") == BIG
    assert decode_header(b"xx" + LITTLE, 2) == (2, 7, 0x102, 5)
    assert decode_header(BIG, 0, "big") == (2, 7, 0x102, 5)
    assert swap_fields(LITTLE, "little") == BIG
    assert swap_fields(BIG[:8], "big") == LITTLE[:8]


@given(U32, U32, U32, U32, st.booleans())
def test_round_trip(op: int, req: int, tx: int, length: int, big: bool) -> None:
    byteorder = byte_order(big)
    raw = encode_header(op, req, tx, length, byteorder)
    assert len(raw) == HEADER_SIZE
    assert decode_header(raw, 0, byteorder) == (op, req, tx, length)
    other = byte_order(not big)
    assert swap_fields(raw, byteorder) == encode_header(op, req, tx, length, other)


def test_message_spans() -> None:
    one = encode_header(2, 1, 0, 3) + b"ab\0"
    two = encode_header(15, 0, 0, 4) + b"a\0t\0"
    assert list(message_spans(one + two)) == [(0, 19), (19, 39)]
    # An incomplete payload, then a partial header: each ends where the data ends.
    assert list(message_spans(one + two[:18])) == [(0, 19), (19, 37)]
    assert list(message_spans(one + two[:5])) == [(0, 19), (19, 24)]
    assert list(message_spans(b"")) == []
