"""Wire messages by the thousand: request encoding and reply splitting for bulk pipelining.

The exporter's walk keeps thousands of requests in flight and reads hundreds of replies per
receive; at that rate the cost of one message in Python is what limits the walk. These
helpers do the same as ``framing.py`` with no object per message: a request is one header
pack plus the path, a reply is an ``(op, req_id, payload)`` tuple cut out of the receive
buffer in one pass.
"""

from __future__ import annotations

import struct

from .framing import PAYLOAD_MAX, ProtocolError
from .header import HEADER_SIZE

_HEADER = struct.Struct("<IIII")

#: One reply: op, req-id, payload.
Reply = tuple[int, int, bytes]


def path_message(op: int, req_id: int, tx_id: int, path_arg: bytes) -> bytes:
    """A little-endian request whose payload is ``path_arg`` (a path and its NUL)."""
    if len(path_arg) > PAYLOAD_MAX:
        raise ValueError(f"payload of {len(path_arg)} bytes exceeds {PAYLOAD_MAX}")
    return _HEADER.pack(op, req_id, tx_id, len(path_arg)) + path_arg


_NODE_OPS = (3, 2, 1)  # GET_PERMS, READ, DIRECTORY (ops.py; wire/ imports nothing above it)


def node_messages(req_id: int, tx_id: int, path_arg: bytes) -> bytes:
    """GET_PERMS, READ and DIRECTORY of one path, req_ids ``req_id`` .. ``req_id + 2``."""
    if len(path_arg) > PAYLOAD_MAX:
        raise ValueError(f"payload of {len(path_arg)} bytes exceeds {PAYLOAD_MAX}")
    size = len(path_arg)
    pack = _HEADER.pack
    perms, read, listing = _NODE_OPS
    return b"".join(
        (
            pack(perms, req_id, tx_id, size),
            path_arg,
            pack(read, req_id + 1, tx_id, size),
            path_arg,
            pack(listing, req_id + 2, tx_id, size),
            path_arg,
        )
    )


class ReplySplitter:
    """Incremental: ``feed(bytes)`` returns every reply those bytes complete, in order.

    A header announcing more than ``payload_max`` bytes raises ``ProtocolError`` naming the
    byte offset in the stream, like ``MessageDecoder``.
    """

    def __init__(self, payload_max: int = PAYLOAD_MAX) -> None:
        self._buffer = bytearray()
        self._payload_max = payload_max
        self._consumed = 0

    def feed(self, data: bytes | bytearray) -> list[Reply]:
        buf = self._buffer
        buf += data
        size = len(buf)
        unpack = _HEADER.unpack_from
        replies: list[Reply] = []
        at = 0
        while size - at >= HEADER_SIZE:
            op, req_id, _tx_id, length = unpack(buf, at)
            if length > self._payload_max:
                raise ProtocolError(
                    f"message {op}/{req_id} at byte {self._consumed + at} announces {length} "
                    f"payload bytes (max {self._payload_max})"
                )
            end = at + HEADER_SIZE + length
            if end > size:
                break
            replies.append((op, req_id, bytes(buf[at + HEADER_SIZE : end])))
            at = end
        if at:
            del buf[:at]
            self._consumed += at
        return replies

    @property
    def pending(self) -> int:
        """Bytes received that do not form a whole message yet."""
        return len(self._buffer)
