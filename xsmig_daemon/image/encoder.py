"""Sans-I/O writer: the header, then one record at a time as bytes.

The caller decides where the bytes go. Every record's ``len`` includes its zero padding and
is a multiple of 8, which is what C xenstored requires (spec section 3).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from . import watchext
from .errors import EncodeError
from .records import (
    CONN_FIELD_UNIQUE_ID,
    DEPTH_UNLIMITED,
    PERM_FLAG_STALE,
    RECORD_ALIGN,
    STREAM_V2,
    TEXT_ENCODING,
    TEXT_ERRORS,
    U16_MAX,
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeData,
    Permission,
    Quota,
    Record,
    RingSpec,
    TransactionData,
    UnknownRecord,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
    encode_text,
)

IDENT = b"xenstore"
HEADER_SIZE = 16
RECORD_HEADER_SIZE = 8
SUPPORTED_VERSIONS = (1, 2)
_PREAMBLE = struct.Struct(">8sII")
_ZEROS = bytes(8)
_PERMS_BY_ID_MAX = 4096


def pad_len(length: int) -> int:
    return (length + RECORD_ALIGN - 1) & -RECORD_ALIGN


def encode_header(header: Header) -> bytes:
    if header.version not in SUPPORTED_VERSIONS:
        raise EncodeError(f"stream version {header.version} is not supported")
    return _PREAMBLE.pack(IDENT, header.version, 1 if header.big_endian else 0)


def _cstring(text: str, what: str) -> bytes:
    """``text`` NUL-terminated; a NUL inside would make the reader split or reject it."""
    raw = encode_text(text)
    if 0 in raw:
        raise EncodeError(f"{what} {text!r} contains a NUL")
    return raw + b"\0"


def _u16(value: int, what: str) -> int:
    if not 0 <= value <= U16_MAX:
        raise EncodeError(f"{what} {value} does not fit in 16 bits")
    return value


class RecordEncoder:
    """Turns records into bytes for one stream's version and byte order."""

    def __init__(self, header: Header, *, watch_ext_layout: str = watchext.DOC) -> None:
        """``watch_ext_layout``: ``doc`` (the design document) or ``xen-4.22`` (what Xen
        4.22's loader parses; see ``watchext``)."""
        if header.version not in SUPPORTED_VERSIONS:
            raise EncodeError(f"stream version {header.version} is not supported")
        if watch_ext_layout not in (watchext.DOC, watchext.XEN_422):
            raise EncodeError(f"cannot write WATCH_DATA_EXTENDED layout {watch_ext_layout!r}")
        self.header = header
        self.watch_ext_layout = watch_ext_layout
        e = ">" if header.big_endian else "<"
        self._rec = struct.Struct(e + "II")
        self._global = struct.Struct(e + "IIii")
        self._conn = struct.Struct(e + "IIIHH")  # record header + conn-id, type, fields
        self._ring = struct.Struct(e + "HHI")
        self._sock = struct.Struct(e + "iI")
        self._conn_lens = struct.Struct(e + "HHI")
        self._u64 = struct.Struct(e + "Q")
        self._watch = struct.Struct(e + "IIIHH")
        self._watch_ext = struct.Struct(e + "IIIHHHH")
        self._watch_ext_422 = struct.Struct(e + "IIIHHH")
        self._tx = struct.Struct(e + "IIII")
        self._node = struct.Struct(e + "IIIIHHHH")
        self._perm = struct.Struct(e + "BBH")
        self._two_u16 = struct.Struct(e + "HH")
        self._domain = struct.Struct(e + "HHI")
        self._u32 = struct.Struct(e + "I")
        self._perm_cache: dict[Permission, bytes] = {}
        self._perms_by_id: dict[int, tuple[tuple[Permission, ...], bytes]] = {}

    def preamble(self) -> bytes:
        return encode_header(self.header)

    def encode(self, record: Record) -> bytes:
        """The bytes of one record: 8-byte record header, body, zero padding."""
        try:
            match record:
                case NodeData():
                    return self._node_bytes(record)
                case WatchData():
                    return self._watch_bytes(record)
                case ConnectionData():
                    return self._connection_bytes(record)
                case WatchDataExtended():
                    return self._watch_ext_bytes(record)
                case UnwrittenDepthWatch():
                    return self._unwritten_depth_bytes(record)
                case TransactionData():
                    return self._tx.pack(record.type, 8, record.conn_id, record.tx_id)
                case GlobalData():
                    return self._global.pack(record.type, 8, record.rw_socket_fd, record.evtchn_fd)
                case GlobalQuotaData():
                    return self._global_quota_bytes(record)
                case DomainData():
                    return self._domain_bytes(record)
                case End():
                    return self._rec.pack(record.type, 0)
                case UnknownRecord():
                    return self._framed(record.type, record.body)
        except (struct.error, UnicodeEncodeError) as exc:  # a field out of its range
            raise EncodeError(f"{type(record).__name__}: {exc}") from None
        raise EncodeError(f"not a record: {record!r}")

    def encode_all(self, records: Iterable[Record]) -> Iterator[bytes]:
        """The preamble, then each record; the caller supplies the END record."""
        yield self.preamble()
        for record in records:
            yield self.encode(record)

    def _framed(self, record_type: int, body: bytes) -> bytes:
        padding = -len(body) & 7
        return self._rec.pack(record_type, len(body) + padding) + body + _ZEROS[:padding]

    def _perm_bytes(self, perm: Permission) -> bytes:
        cached = self._perm_cache.get(perm)
        if cached is None:
            letter = perm.access.encode("latin-1")
            if len(letter) != 1:
                raise EncodeError(f"permission letter {perm.access!r} is not one byte")
            flags = PERM_FLAG_STALE if perm.stale else 0
            cached = self._perm.pack(letter[0], flags, _u16(perm.domid, "perm domid"))
            self._perm_cache[perm] = cached
        return cached

    def _node_perm_bytes(self, perms: tuple[Permission, ...]) -> bytes:
        # Producers share one perms tuple between many nodes (so does the decoder): cache by
        # identity, keeping the tuple alive so that its id cannot be reused meanwhile.
        # (Hashing a tuple of dataclasses would cost more than encoding it.)
        entry = self._perms_by_id.get(id(perms))
        if entry is not None and entry[0] is perms:
            return entry[1]
        encoded = b"".join([self._perm_bytes(p) for p in perms])
        if type(perms) is not tuple:  # a mutable sequence may change under the same id
            return encoded
        if len(self._perms_by_id) >= _PERMS_BY_ID_MAX:
            self._perms_by_id.clear()
        self._perms_by_id[id(perms)] = (perms, encoded)
        return encoded

    def _node_bytes(self, node: NodeData) -> bytes:
        conn_id = node.conn_id
        if conn_id and node.access & ~3:
            raise EncodeError(f"node {node.path!r}: reserved access bits 0x{node.access:x}")
        if not conn_id:
            return self._node_record(node.path, node.value, node.perms)
        return self._node_record(
            node.path,
            node.value,
            node.perms,
            conn_id=conn_id,
            tx_id=node.tx_id,
            access=int(node.access),
        )

    def committed_node(self, path: str, value: bytes, perms: tuple[Permission, ...]) -> bytes:
        """A committed NODE_DATA record straight from a tree's fields (no NodeData made: a
        live update's pre-copy encodes every node of the tree this way)."""
        try:
            return self._node_record(path, value, perms)
        except (struct.error, UnicodeEncodeError) as exc:
            raise EncodeError(f"NodeData: {exc}") from None

    def _node_record(
        self,
        text_path: str,
        value: bytes,
        perms: tuple[Permission, ...],
        *,
        conn_id: int = 0,
        tx_id: int = 0,
        access: int = 0,
    ) -> bytes:
        path = text_path.encode(TEXT_ENCODING, TEXT_ERRORS)
        perm_bytes = self._node_perm_bytes(perms)
        path_len = len(path) + 1
        size = 16 + len(perm_bytes) + path_len + len(value)
        padding = -size & 7
        if path_len > U16_MAX or len(value) > U16_MAX or len(perms) > U16_MAX:
            raise EncodeError(f"node {text_path!r}: path, value or perm count too long")
        if 0 in path:
            raise EncodeError(f"node path {text_path!r} contains a NUL")
        head = self._node.pack(
            5,  # RecordType.NODE_DATA
            size + padding,
            conn_id,
            tx_id,
            path_len,
            len(value),
            access,
            len(perms),
        )
        return b"".join((head, perm_bytes, path, b"\0", value, _ZEROS[:padding]))

    def _watch_bytes(self, watch: WatchData) -> bytes:
        return self._watch_record(watch, self._watch)

    def _watch_ext_bytes(self, watch: WatchDataExtended) -> bytes:
        if self.header.version < STREAM_V2:
            raise EncodeError("WATCH_DATA_EXTENDED needs a version 2 stream")
        depth = _u16(DEPTH_UNLIMITED if watch.depth < 0 else watch.depth, "depth")
        if self.watch_ext_layout == watchext.XEN_422:
            return self._watch_record(watch, self._watch_ext_422, depth)
        return self._watch_record(watch, self._watch_ext, depth, 0)

    def _unwritten_depth_bytes(self, watch: UnwrittenDepthWatch) -> bytes:
        """Xen 4.22's writer layout, byte for byte (reproducers of its defect only)."""
        written = self._watch_record(watch, self._watch)
        body_len = len(written) - RECORD_HEADER_SIZE
        if watch.declared_len not in (body_len, body_len + 8):
            raise EncodeError(
                f"watch {watch.path!r}: declared len {watch.declared_len} is not Xen 4.22's "
                f"({body_len} or {body_len + 8})"
            )
        return self._rec.pack(watch.type, watch.declared_len) + written[RECORD_HEADER_SIZE:]

    def _watch_record(
        self,
        watch: WatchData | WatchDataExtended | UnwrittenDepthWatch,
        head: struct.Struct,
        *fields: int,
    ) -> bytes:
        """Record header + conn-id, lengths, ``fields``; then wpath, token, padding."""
        path = _cstring(watch.path, "wpath")
        token = _cstring(watch.token, "token")
        size = head.size - RECORD_HEADER_SIZE + len(path) + len(token)
        padding = -size & 7
        packed = head.pack(
            watch.type,
            size + padding,
            watch.conn_id,
            _u16(len(path), "wpath-len"),
            _u16(len(token), "token-len"),
            *fields,
        )
        return b"".join((packed, path, token, _ZEROS[:padding]))

    def _connection_bytes(self, conn: ConnectionData) -> bytes:
        spec = conn.spec
        if isinstance(spec, RingSpec):
            spec_bytes = self._ring.pack(
                _u16(spec.domid, "domid"), _u16(spec.tdomid, "tdomid"), spec.evtchn
            )
        else:
            spec_bytes = self._sock.pack(spec.fd, 0)
        if conn.out_resp_len > len(conn.out_data):
            raise EncodeError(
                f"conn-id {conn.conn_id}: out-resp-len {conn.out_resp_len} exceeds the "
                f"{len(conn.out_data)} bytes of out_data"
            )
        data_size = 24 + len(conn.in_data) + len(conn.out_data)
        padding = -data_size & 7
        has_uid = conn.unique_id is not None
        total = data_size + padding + (8 if has_uid else 0)
        lens = self._conn_lens.pack(
            _u16(len(conn.in_data), "in-data-len"),
            _u16(conn.out_resp_len, "out-resp-len"),
            len(conn.out_data),
        )
        parts = [
            self._conn.pack(
                conn.type,
                total,
                conn.conn_id,
                conn.conn_type,
                CONN_FIELD_UNIQUE_ID if has_uid else 0,
            ),
            spec_bytes,
            lens,
            conn.in_data,
            conn.out_data,
            _ZEROS[:padding],
        ]
        if conn.unique_id is not None:
            parts.append(self._u64.pack(conn.unique_id))
        return b"".join(parts)

    def _quota_tail(self, quotas: tuple[Quota, ...]) -> bytes:
        values = b"".join(self._u32.pack(value) for _, value in quotas)
        if any(not name for name, _ in quotas):
            raise EncodeError("empty quota name")
        names = b"".join(_cstring(name, "quota name") for name, _ in quotas)
        return values + names

    def _global_quota_bytes(self, record: GlobalQuotaData) -> bytes:
        body = self._two_u16.pack(
            _u16(len(record.domain_quotas), "n-dom-quota"),
            _u16(len(record.global_quotas), "n-glob-quota"),
        ) + self._quota_tail(record.domain_quotas + record.global_quotas)
        return self._framed(record.type, body)

    def _domain_bytes(self, record: DomainData) -> bytes:
        if record.features and self.header.version < STREAM_V2:
            raise EncodeError(f"domain {record.domid}: features need a version 2 stream")
        body = self._domain.pack(
            _u16(record.domid, "domain-id"),
            _u16(len(record.quotas), "n-quota"),
            record.features,
        ) + self._quota_tail(record.quotas)
        return self._framed(record.type, body)


def encode_image(
    records: Iterable[Record],
    header: Header | None = None,
    *,
    watch_ext_layout: str = watchext.DOC,
) -> Iterator[bytes]:
    """Stream an image chunk by chunk: preamble, the records, and END if not given."""
    encoder = RecordEncoder(header or Header(), watch_ext_layout=watch_ext_layout)
    yield encoder.preamble()
    ended = False
    for record in records:
        if ended:
            raise EncodeError("record after END")
        yield encoder.encode(record)
        ended = isinstance(record, End)
    if not ended:
        yield encoder.encode(End())
