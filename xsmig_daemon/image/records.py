"""The record model of the xenstore migration stream.

One frozen dataclass per record type of ``shared/spec/image-format.md``. This is the single
interchange format between the codec, the mock daemon and the exporter: nothing else in
xsmig defines these records again.

Paths and tokens are ``str``; they are decoded from the stream with ``surrogateescape`` so
that any byte sequence survives a read -> write round trip unchanged. Values and pending
connection data are raw ``bytes``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

#: Byte codec used for every path, token and quota name in the stream.
TEXT_ENCODING = "utf-8"
TEXT_ERRORS = "surrogateescape"

#: Domain ids from here on are reserved (xen.h): no guest has one.
DOMID_FIRST_RESERVED = 0x7FF0
#: "The caller's own domain" in requests (xen.h).
DOMID_SELF = 0x7FF0
DOMID_INVALID = 0x7FF4
DOMID_ANY = 0x7FF5
#: Largest value of the stream's 16-bit fields (lengths, counts, domids).
U16_MAX = 0xFFFF
#: Stream version 2 added WATCH_DATA_EXTENDED, DOMAIN_DATA features and the connection
#: unique-id; version 1 has none of them.
STREAM_V2 = 2
#: Depth of a WATCH_DATA_EXTENDED record meaning "no limit".
DEPTH_UNLIMITED = 0xFFFF


def encode_text(text: str) -> bytes:
    return text.encode(TEXT_ENCODING, TEXT_ERRORS)


def decode_text(raw: bytes) -> str:
    return raw.decode(TEXT_ENCODING, TEXT_ERRORS)


class RecordType(enum.IntEnum):
    END = 0
    GLOBAL_DATA = 1
    CONNECTION_DATA = 2
    WATCH_DATA = 3
    TRANSACTION_DATA = 4
    NODE_DATA = 5
    GLOBAL_QUOTA_DATA = 6
    DOMAIN_DATA = 7
    WATCH_DATA_EXTENDED = 8


class ConnType(enum.IntEnum):
    RING = 0
    SOCKET = 1


class NodeAccess(enum.IntFlag):
    """Access bits of a pending-transaction node; no bit set means deleted."""

    DELETED = 0
    READ = 1
    WRITTEN = 2


PERM_FLAG_STALE = 0x01
#: CONNECTION_DATA ``fields`` bit: a 64-bit unique-id follows the data (version 2).
CONN_FIELD_UNIQUE_ID = 0x0001
#: Records and their variable parts are padded to this many bytes.
RECORD_ALIGN = 8


@dataclass(frozen=True, slots=True)
class Header:
    """The 16-byte preamble: stream version and byte order of everything after it."""

    version: int = 1
    big_endian: bool = False


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission specifier; the first of a node's list names its owner.

    ``access`` is one of ``n r w b`` for a well-formed stream; a reader keeps any other
    letter so that validation (not decoding) decides what to do with it.
    """

    access: str
    domid: int
    stale: bool = False

    def __str__(self) -> str:
        return f"{self.access}{self.domid}"

    @classmethod
    def parse(cls, text: str, *, stale: bool = False) -> Permission:
        """Parse the wire form ``r5``; raises ValueError on anything else."""
        if text[:1] not in ("n", "r", "w", "b") or not text[1:].isdigit():
            raise ValueError(f"bad permission {text!r}")
        return cls(text[0], int(text[1:]), stale)


@dataclass(frozen=True, slots=True)
class End:
    type = RecordType.END


@dataclass(frozen=True, slots=True)
class GlobalData:
    type = RecordType.GLOBAL_DATA
    rw_socket_fd: int = -1
    evtchn_fd: int = -1


@dataclass(frozen=True, slots=True)
class RingSpec:
    """conn-spec of a shared-ring (domain) connection."""

    domid: int
    tdomid: int = DOMID_INVALID
    evtchn: int = 0


@dataclass(frozen=True, slots=True)
class SocketSpec:
    """conn-spec of a unix-socket connection."""

    fd: int


@dataclass(frozen=True, slots=True)
class ConnectionData:
    """A connection with its pending wire bytes.

    ``in_data`` is received-but-unprocessed input; ``out_data`` is unsent output whose first
    ``out_resp_len`` bytes are the remainder of a partly sent message.
    """

    type = RecordType.CONNECTION_DATA
    conn_id: int
    spec: RingSpec | SocketSpec
    in_data: bytes = b""
    out_data: bytes = b""
    out_resp_len: int = 0
    unique_id: int | None = None

    @property
    def conn_type(self) -> ConnType:
        return ConnType.RING if isinstance(self.spec, RingSpec) else ConnType.SOCKET


@dataclass(frozen=True, slots=True)
class WatchData:
    type = RecordType.WATCH_DATA
    conn_id: int
    path: str
    token: str


@dataclass(frozen=True, slots=True)
class WatchDataExtended:
    """A depth-limited watch (version 2 only); ``depth`` 0xFFFF means unlimited."""

    type = RecordType.WATCH_DATA_EXTENDED
    conn_id: int
    path: str
    token: str
    depth: int


@dataclass(frozen=True, slots=True)
class UnwrittenDepthWatch:
    """A WATCH_DATA_EXTENDED record as Xen 4.22's writer produces it (``image/watchext.py``).

    The writer never wrote the depth, so it is unknown; wpath starts at body byte 8 and
    ``declared_len`` (the record's ``len``) may be 8 bytes more than ``written_len``. Only a
    reader makes these; a converter turns them into plain watches.
    """

    type = RecordType.WATCH_DATA_EXTENDED
    conn_id: int
    path: str
    token: str
    declared_len: int

    @property
    def written_len(self) -> int:
        size = 8 + len(encode_text(self.path)) + 1 + len(encode_text(self.token)) + 1
        return (size + 7) & ~7


@dataclass(frozen=True, slots=True)
class TransactionData:
    type = RecordType.TRANSACTION_DATA
    conn_id: int
    tx_id: int


@dataclass(frozen=True, slots=True)
class NodeData:
    """A committed node (``conn_id == 0``) or a node of a pending transaction.

    For transaction nodes ``access`` holds the READ/WRITTEN bits; 0 means the transaction
    deleted the node (then ``value`` is empty and ``perms`` is empty).
    """

    type = RecordType.NODE_DATA
    path: str
    value: bytes = b""
    perms: tuple[Permission, ...] = (Permission("n", 0),)
    conn_id: int = 0
    tx_id: int = 0
    access: NodeAccess = NodeAccess.DELETED

    @property
    def committed(self) -> bool:
        return self.conn_id == 0


#: A quota as stored in the stream: name and value, 0 meaning unlimited.
Quota = tuple[str, int]


@dataclass(frozen=True, slots=True)
class GlobalQuotaData:
    type = RecordType.GLOBAL_QUOTA_DATA
    domain_quotas: tuple[Quota, ...] = ()
    global_quotas: tuple[Quota, ...] = ()


@dataclass(frozen=True, slots=True)
class DomainData:
    type = RecordType.DOMAIN_DATA
    domid: int
    features: int = 0
    quotas: tuple[Quota, ...] = ()


@dataclass(frozen=True, slots=True)
class UnknownRecord:
    """A record of a reserved type, kept verbatim (C loaders skip these by ``len``)."""

    type: int
    body: bytes = field(default=b"")


Record = (
    End
    | GlobalData
    | ConnectionData
    | WatchData
    | WatchDataExtended
    | UnwrittenDepthWatch
    | TransactionData
    | NodeData
    | GlobalQuotaData
    | DomainData
    | UnknownRecord
)
