"""Sans-I/O framing of xenstore wire messages (16-byte header + payload).

``MessageDecoder`` is fed bytes as they arrive and yields complete ``Message`` objects; it
never touches a socket. The header (``header.py``) is four u32 in the writer's byte order,
little endian on x86; ``byteorder`` reads or writes the other one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .header import HEADER_SIZE, ByteOrder, decode_header, encode_header
from .ops import Op

PAYLOAD_MAX = 4096


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid xenstore message."""


@dataclass(frozen=True, slots=True)
class Message:
    op: int
    req_id: int
    tx_id: int
    payload: bytes

    def encode(self, byteorder: ByteOrder = "little") -> bytes:
        return encode_message(self.op, self.req_id, self.tx_id, self.payload, byteorder)

    @property
    def strings(self) -> list[bytes]:
        """The NUL-separated arguments (a trailing NUL does not add an empty one)."""
        return split_strings(self.payload)

    def describe(self) -> str:
        try:
            name = Op(self.op).name
        except ValueError:
            name = str(self.op)
        return f"{name} req={self.req_id} tx={self.tx_id} len={len(self.payload)}"


def encode_message(
    op: int, req_id: int, tx_id: int, payload: bytes, byteorder: ByteOrder = "little"
) -> bytes:
    if len(payload) > PAYLOAD_MAX:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {PAYLOAD_MAX}")
    return encode_header(op, req_id, tx_id, len(payload), byteorder) + payload


def split_strings(payload: bytes) -> list[bytes]:
    parts = payload.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


class MessageDecoder:
    """Incremental decoder: ``feed()`` bytes, then iterate ``messages()``.

    A header announcing more than ``PAYLOAD_MAX`` bytes raises ``ProtocolError``; C treats
    such a peer as broken and stops talking to it. ``pending`` is what has been received but
    does not yet form a whole message (the stream image's "partial input").
    """

    def __init__(self, byteorder: ByteOrder = "little", payload_max: int = PAYLOAD_MAX) -> None:
        self._buffer = bytearray()
        self._byteorder = byteorder
        self._payload_max = payload_max

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> bytes:
        return bytes(self._buffer)

    def next_message(self) -> Message | None:
        buf = self._buffer
        if len(buf) < HEADER_SIZE:
            return None
        op, req_id, tx_id, length = decode_header(buf, 0, self._byteorder)
        if length > self._payload_max:
            raise ProtocolError(
                f"message {op}/{req_id} announces {length} payload bytes (max {self._payload_max})"
            )
        end = HEADER_SIZE + length
        if len(buf) < end:
            return None
        message = Message(op, req_id, tx_id, bytes(buf[HEADER_SIZE:end]))
        del buf[:end]
        return message

    def messages(self) -> Iterator[Message]:
        while (message := self.next_message()) is not None:
            yield message


__all__ = [
    "HEADER_SIZE",
    "PAYLOAD_MAX",
    "ByteOrder",
    "Message",
    "MessageDecoder",
    "ProtocolError",
    "decode_header",
    "encode_message",
    "split_strings",
]
