"""The private channel between a running mock and its standby successor: messages, no I/O.

The channel is a ``SOCK_SEQPACKET`` socket pair, so every message is one packet and packet
boundaries need no length field: a message is a four-letter kind followed by its payload.
File descriptors travel as SCM_RIGHTS ancillary data on ``FDS`` packets. The sequence
(docs/liveupdate.md, "Standby successor"):

    successor -> HELLO "xsmig-successor 1"      (it imported and connected back)
    daemon    -> IMAGE ... IMAGE                (pre-copy: a v2 image of the tree, END last)
    successor -> LOADED                         (the pre-copy is restored)
    daemon    -> DELTA ... DELTA                (frozen from here: one JSON document, cut up:
                                                 removed paths, child lists, side facts)
    daemon    -> IMAGE ... IMAGE                (the frozen state: v2 image, END last)
    daemon    -> FDS [roles] + fds, ...         (listener, clients, domain endpoints)
    daemon    -> GO
    successor -> SERVING                        (restored and adopted; reads nothing yet)
    daemon    -> BYE                            (the daemon lets go: the successor may read)

Either side closing the channel (or anything else arriving) before ``BYE`` aborts the
update: the daemon thaws and keeps serving, the successor exits without touching a socket.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

#: What a successor says first; a new protocol gets a new number.
GREETING = b"xsmig-successor 1"
#: Largest packet either side sends (image bytes are cut to this).
PACKET_MAX = 65536
KIND_SIZE = 4
#: SCM_RIGHTS carries at most 253 fds per message (Linux SCM_MAX_FD); stay below.
FDS_PER_PACKET = 200


class Kind(enum.Enum):
    HELLO = b"HELO"
    IMAGE = b"IMAG"
    LOADED = b"LOAD"
    DELTA = b"DLTA"
    FDS = b"FDS_"
    GO = b"GO__"
    SERVING = b"SERV"
    BYE = b"BYE_"


class HandoverError(Exception):
    """Something that is not this protocol arrived on the channel."""


@dataclass(frozen=True, slots=True)
class Packet:
    kind: Kind
    payload: bytes = b""

    def encode(self) -> bytes:
        if len(self.payload) + KIND_SIZE > PACKET_MAX:
            raise ValueError(f"{self.kind.name} payload of {len(self.payload)} bytes too large")
        return self.kind.value + self.payload


def decode(data: bytes) -> Packet:
    """One received packet; HandoverError names what is wrong with it."""
    if len(data) < KIND_SIZE:
        raise HandoverError(f"a {len(data)}-byte packet (garbage or a closed channel)")
    try:
        kind = Kind(data[:KIND_SIZE])
    except ValueError:
        raise HandoverError(f"unknown packet kind {data[:KIND_SIZE]!r}") from None
    return Packet(kind, data[KIND_SIZE:])


def expect(data: bytes, kind: Kind) -> Packet:
    packet = decode(data)
    if packet.kind is not kind:
        raise HandoverError(f"expected {kind.name}, got {packet.kind.name}")
    return packet


def hello() -> Packet:
    return Packet(Kind.HELLO, GREETING)


def check_hello(data: bytes) -> None:
    packet = expect(data, Kind.HELLO)
    if packet.payload != GREETING:
        raise HandoverError(f"greeting {packet.payload[:40]!r}, not an xsmig successor")


def image_packets(chunk: bytes) -> list[Packet]:
    """Image bytes cut into IMAGE packets."""
    size = PACKET_MAX - KIND_SIZE
    return [Packet(Kind.IMAGE, chunk[i : i + size]) for i in range(0, len(chunk), size)]


def json_packets(kind: Kind, value: object) -> list[Packet]:
    """One JSON document in as many ``kind`` packets as it needs (the receiver joins them)."""
    data = json.dumps(value, separators=(",", ":")).encode()
    size = PACKET_MAX - KIND_SIZE
    return [Packet(kind, data[i : i + size]) for i in range(0, len(data), size)] or [
        Packet(kind, b"")
    ]


def json_document(payloads: list[bytes], kind: Kind) -> object:
    """The JSON document that ``json_packets`` cut into ``payloads``."""
    try:
        return json.loads(b"".join(payloads))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HandoverError(f"{kind.name} payload is not JSON: {exc}") from None


__all__ = [
    "FDS_PER_PACKET",
    "GREETING",
    "PACKET_MAX",
    "HandoverError",
    "Kind",
    "Packet",
    "check_hello",
    "decode",
    "expect",
    "hello",
    "image_packets",
    "json_document",
    "json_packets",
]
