"""The 16-byte header of a xenstore wire message: four u32 (op, req-id, tx-id, length) in
the byte order of the machine that wrote them.

The one codec of that header: message framing (``framing.py``) uses it, and so do the image
layer (byte-order conversion of the pending data a migration stream carries) and the store
(splitting restored pending output back into messages).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

HEADER_SIZE = 16
#: Each header field is a u32.
FIELD_SIZE = 4

ByteOrder = Literal["little", "big"]
_HEADERS = {"little": struct.Struct("<IIII"), "big": struct.Struct(">IIII")}
_FIELDS = {"little": struct.Struct("<I"), "big": struct.Struct(">I")}


def byte_order(big_endian: bool) -> ByteOrder:
    return "big" if big_endian else "little"


def other_order(order: ByteOrder) -> ByteOrder:
    return "little" if order == "big" else "big"


def encode_header(
    op: int, req_id: int, tx_id: int, length: int, byteorder: ByteOrder = "little"
) -> bytes:
    return _HEADERS[byteorder].pack(op, req_id, tx_id, length)


def decode_header(
    data: bytes | bytearray, offset: int = 0, byteorder: ByteOrder = "little"
) -> tuple[int, int, int, int]:
    """(op, req-id, tx-id, length) of the header at ``offset``."""
    op, req_id, tx_id, length = _HEADERS[byteorder].unpack_from(data, offset)
    return op, req_id, tx_id, length


def swap_fields(data: bytes, source: ByteOrder) -> bytes:
    """Whole u32 fields (``len(data)`` a multiple of ``FIELD_SIZE``) in the other order."""
    src, dst = _FIELDS[source], _FIELDS[other_order(source)]
    return b"".join(dst.pack(*src.unpack_from(data, at)) for at in range(0, len(data), FIELD_SIZE))


def message_spans(data: bytes, byteorder: ByteOrder = "little") -> Iterator[tuple[int, int]]:
    """(start, end) of each message in ``data``, a sequence of messages of which the last
    may be incomplete (its span then ends at ``len(data)``, a partial header included)."""
    size = len(data)
    start = 0
    while size - start >= HEADER_SIZE:
        length = decode_header(data, start, byteorder)[3]
        end = min(start + HEADER_SIZE + length, size)
        yield start, end
        start = end
    if start < size:
        yield start, size


@dataclass(frozen=True, slots=True)
class SwapResult:
    data: bytes
    #: bytes at the end that could not be converted unambiguously (not included in ``data``)
    dropped: int


def swap_wire_messages(data: bytes, source_big: bool) -> SwapResult:
    """Convert a sequence of wire messages to the other byte order.

    All but the last message are complete; the last may lack payload bytes (its header is
    converted, the payload copied) or be a partial header (whole 4-byte fields converted; a
    field cut in the middle makes the tail ambiguous and it is dropped).
    """
    order = byte_order(source_big)
    out = bytearray()
    for start, end in message_spans(data, order):
        header_end = min(start + HEADER_SIZE, end)
        cut = (header_end - start) % FIELD_SIZE
        if cut:  # a partial header cut inside a field: the rest is ambiguous
            return SwapResult(bytes(out), end - start)
        out += swap_fields(data[start:header_end], order)
        out += data[header_end:end]
    return SwapResult(bytes(out), 0)
