"""Sans-I/O incremental reader of a migration stream.

Theory of operation: ``feed()`` appends bytes to an internal buffer; ``next_record()``
returns the next complete record (with its index and byte offset) or ``None`` when more
bytes are needed. ``close()`` says the input has ended: it raises if the stream stopped
before its END record. Chunks may have any size, one byte included.

This layer checks *framing*: the preamble, record lengths, inner lengths against ``len``,
NUL terminators and zero padding, END present and nothing after it. Dependency order and
loader-specific rules are checked by ``validate.py`` on the records this yields.

Both forms of ``len`` are read: C's (padding included, a multiple of 8) and the design
doc's unpadded form, where the reader skips to the next 8-byte boundary after the body.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn

from . import watchext
from .encoder import HEADER_SIZE, IDENT, RECORD_HEADER_SIZE, SUPPORTED_VERSIONS, pad_len
from .errors import FramingError, TruncatedImageError
from .records import (
    CONN_FIELD_UNIQUE_ID,
    PERM_FLAG_STALE,
    RECORD_ALIGN,
    STREAM_V2,
    TEXT_ENCODING,
    TEXT_ERRORS,
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Quota,
    Record,
    RecordType,
    RingSpec,
    SocketSpec,
    TransactionData,
    UnknownRecord,
    WatchData,
    decode_text,
)

_PREAMBLE = struct.Struct(">8sII")
_COMPACT_AT = 1 << 16
_PERMS_CACHE_MAX = 1 << 14
_ACCESS = tuple(NodeAccess(bits) for bits in range(4))
_NODE = int(RecordType.NODE_DATA)
_END = int(RecordType.END)
_WATCH_EXT = int(RecordType.WATCH_DATA_EXTENDED)


@dataclass(slots=True)
class Located:
    """A decoded record with its position: index after the header, byte offset in the stream."""

    index: int
    offset: int
    record: Record

    def __iter__(self) -> Iterator[int | Record]:
        return iter((self.index, self.offset, self.record))


class _BodyError(Exception):
    """Raised inside a body parser; the decoder adds the position."""


class ImageDecoder:
    def __init__(self, *, allow_trailing: bool = False, watch_ext_layout: str = "auto") -> None:
        """``watch_ext_layout``: how WATCH_DATA_EXTENDED bodies are laid out (``auto``
        detects each record's; see ``watchext``)."""
        if watch_ext_layout not in (watchext.AUTO, *watchext.LAYOUTS):
            raise ValueError(f"unknown WATCH_DATA_EXTENDED layout {watch_ext_layout!r}")
        self._watch_ext_layout = watch_ext_layout
        #: (index, offset) of GLOBAL_QUOTA_DATA / DOMAIN_DATA records whose padding was not
        #: zero. Xen 4.22 leaves heap bytes there (talloc_size, not talloc_zero_size); the
        #: format says padding is ignored when read, so these are accepted and listed.
        self.dirty_padding: list[tuple[int, int]] = []
        self._buf = bytearray()
        self._pos = 0  # first unconsumed byte in _buf
        self._base = 0  # stream offset of _buf[0]
        self._index = 0
        self._ended = False
        self._allow_trailing = allow_trailing
        self.header: Header | None = None
        self._parsers: dict[int, Callable[[bytes, int, int], Record]] = {}

    # -- input ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._ended and data and not self._allow_trailing:
            self._trailing_error(len(self._buf) - self._pos + len(data))
        if self._pos > _COMPACT_AT and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0
        self._buf += data

    def close(self) -> None:
        """Declare end of input; raises if the stream is incomplete."""
        offset = self._base + self._pos
        if self.header is None:
            raise TruncatedImageError(
                f"stream ends after {offset + len(self._buf) - self._pos} bytes, "
                f"inside the {HEADER_SIZE}-byte header",
                offset=0,
            )
        if not self._ended:
            left = len(self._buf) - self._pos
            detail = f" ({left} bytes of an incomplete record)" if left else ""
            raise TruncatedImageError(
                f"stream ends before the END record{detail}",
                record_index=self._index,
                offset=offset,
                record_type=self._peek_type(),
            )

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def offset(self) -> int:
        """Stream offset of the next unread byte."""
        return self._base + self._pos

    # -- output --------------------------------------------------------------------------
    def records(self) -> Iterator[Located]:
        """Yield every record that the bytes fed so far complete."""
        if self.header is None and not self._read_header():
            return
        while not self._ended:
            buf = self._buf
            pos = self._pos
            avail = len(buf) - pos
            if avail < RECORD_HEADER_SIZE:
                return
            length = self._rec.unpack_from(buf, pos)[1]
            if avail < RECORD_HEADER_SIZE + length + (-length & 7):
                return
            # Parse from an immutable copy of everything complete so far: slices of bytes
            # are one allocation each, and every byte is copied once whatever the chunking.
            yield from self._records_in(bytes(buf[pos:]), self._base + pos)

    def _records_in(self, window: bytes, window_offset: int) -> Iterator[Located]:
        unpack_header = self._rec.unpack_from
        parsers = self._parsers
        parse_node = self._parse_node
        head = RECORD_HEADER_SIZE
        size = len(window)
        pos = 0
        while size - pos >= head:
            record_type, length = unpack_header(window, pos)
            total = head + length + (-length & 7)
            if size - pos < total:
                return
            body = pos + head
            # NODE_DATA is nearly every record of a real stream: no table look-up for it.
            parser = parse_node if record_type == _NODE else parsers.get(record_type)
            record: Record
            try:
                if record_type == _WATCH_EXT:
                    parsed = self._watch_ext_record(window, body, body + length)
                    record = parsed.record
                    # Xen 4.22's writer declares 8 bytes more than it wrote: resynchronise.
                    total = head + parsed.consumed + (-parsed.consumed & 7)
                elif parser is not None:
                    record = parser(window, body, body + length)
                else:
                    record = UnknownRecord(record_type, window[body : body + length])
                if length & 7:
                    self._check_zero(window, body + length, pos + total, "alignment padding")
            except (_BodyError, struct.error) as exc:
                self._raise_body_error(exc, record_type)
            located = Located(self._index, window_offset + pos, record)
            pos += total
            # Advance before yielding: next_record() abandons this generator after one item,
            # and feed() may compact the buffer while we are suspended.
            self._pos = window_offset + pos - self._base
            self._index += 1
            if record_type == _END:
                self._ended = True
                left = len(self._buf) - self._pos
                if left and not self._allow_trailing:
                    self._trailing_error(left)
                yield located
                return
            yield located

    def next_record(self) -> Located | None:
        """The next complete record, or None until more bytes are fed."""
        return next(self.records(), None)

    def _raise_body_error(self, exc: Exception, record_type: int) -> NoReturn:
        reason = str(exc)
        if isinstance(exc, struct.error):
            reason = f"record too short for its fields ({exc})"
        raise FramingError(
            reason,
            record_index=self._index,
            offset=self._base + self._pos,
            record_type=record_type,
        ) from None

    # -- helpers -------------------------------------------------------------------------
    def _trailing_error(self, count: int) -> None:
        raise FramingError(
            f"{count} bytes after the END record",
            record_index=self._index,
            offset=self._base + self._pos,
        )

    def _peek_type(self) -> int | None:
        if self.header is None or len(self._buf) - self._pos < self._u32.size:
            return None
        value: int = self._u32.unpack_from(self._buf, self._pos)[0]
        return value

    def _read_header(self) -> bool:
        if len(self._buf) - self._pos < HEADER_SIZE:
            return False
        ident, version, flags = _PREAMBLE.unpack_from(self._buf, self._pos)
        if ident != IDENT:
            raise FramingError(f"bad header ident {bytes(ident)!r}, expected {IDENT!r}", offset=0)
        if version not in SUPPORTED_VERSIONS:
            raise FramingError(f"unsupported stream version {version}", offset=8)
        if flags & ~1:
            raise FramingError(f"reserved header flag bits set (flags 0x{flags:08x})", offset=12)
        self.header = Header(version, bool(flags & 1))
        self._setup_structs(self.header)
        self._pos += HEADER_SIZE
        return True

    def _setup_structs(self, header: Header) -> None:
        e = ">" if header.big_endian else "<"
        self._rec = struct.Struct(e + "II")
        self._u32 = struct.Struct(e + "I")
        self._global = struct.Struct(e + "ii")
        self._conn = struct.Struct(e + "IHH8sHHI")
        self._ring = struct.Struct(e + "HHI")
        self._sock = struct.Struct(e + "iI")
        self._u64 = struct.Struct(e + "Q")
        self._watch = struct.Struct(e + "IHH")
        self._u16 = struct.Struct(e + "H")
        self._tx = struct.Struct(e + "II")
        self._node = struct.Struct(e + "IIHHHH")
        self._perm_domid = struct.Struct(e + "H")
        self._two_u16 = struct.Struct(e + "HH")
        self._domain = struct.Struct(e + "HHI")
        self._perms_cache: dict[bytes, tuple[Permission, ...]] = {}
        self._parsers = {
            RecordType.END: self._parse_end,
            RecordType.GLOBAL_DATA: self._parse_global,
            RecordType.CONNECTION_DATA: self._parse_connection,
            RecordType.WATCH_DATA: self._parse_watch,
            RecordType.TRANSACTION_DATA: self._parse_transaction,
            RecordType.NODE_DATA: self._parse_node,
            RecordType.GLOBAL_QUOTA_DATA: self._parse_global_quota,
            RecordType.DOMAIN_DATA: self._parse_domain,
            RecordType.WATCH_DATA_EXTENDED: self._parse_watch_ext,
        }

    @staticmethod
    def _check_zero(buf: bytes, start: int, stop: int, what: str) -> None:
        if stop > start and buf.count(0, start, stop) != stop - start:
            raise _BodyError(f"non-zero {what} at body byte {start}")

    @staticmethod
    def _check_tail(buf: bytes, content_end: int, end: int) -> None:
        """Between the fields and ``end`` there may only be 0-7 zero padding bytes."""
        if content_end > end:
            raise _BodyError(f"fields need {content_end - end} bytes more than len provides")
        if end - content_end >= RECORD_ALIGN:
            raise _BodyError(f"len leaves {end - content_end} unused bytes after the fields")
        if buf.count(0, content_end, end) != end - content_end:
            raise _BodyError("non-zero padding")

    @staticmethod
    def _short(body: int, end: int, fixed: int) -> _BodyError:
        # Checked before unpacking: the fields must not be read from the next record's bytes.
        return _BodyError(f"len {end - body} is shorter than the {fixed} fixed body bytes")

    @staticmethod
    def _cstring(buf: bytes, start: int, length: int, what: str) -> str:
        if length == 0:
            raise _BodyError(f"{what} length 0 (must include the NUL)")
        stop = start + length - 1
        if buf[stop] != 0:
            raise _BodyError(f"{what} not NUL-terminated")
        if buf.find(0, start, stop) != -1:
            raise _BodyError(f"{what} contains a NUL before its end")
        return decode_text(buf[start:stop])

    def _parse_end(self, buf: bytes, body: int, end: int) -> Record:
        if end != body:
            raise _BodyError(f"END record with len {end - body}, expected 0")
        return End()

    def _parse_global(self, buf: bytes, body: int, end: int) -> Record:
        self._check_tail(buf, body + 8, end)
        rw_fd, evtchn_fd = self._global.unpack_from(buf, body)
        return GlobalData(rw_fd, evtchn_fd)

    def _parse_connection(self, buf: bytes, body: int, end: int) -> Record:
        fixed = self._conn.size
        if end - body < fixed:
            raise _BodyError(f"CONNECTION_DATA needs {fixed} bytes, len is {end - body}")
        conn_id, conn_type, fields, spec_raw, in_len, resp_len, out_len = self._conn.unpack_from(
            buf, body
        )
        spec: RingSpec | SocketSpec
        if conn_type == 0:
            spec = RingSpec(*self._ring.unpack(spec_raw))
        elif conn_type == 1:
            fd, pad = self._sock.unpack(spec_raw)
            if pad:
                raise _BodyError("non-zero pad in socket conn-spec")
            spec = SocketSpec(fd)
        else:
            raise _BodyError(f"reserved conn-type {conn_type}")
        if fields & ~CONN_FIELD_UNIQUE_ID:
            raise _BodyError(f"reserved connection field bits 0x{fields:04x}")
        if resp_len > out_len:
            raise _BodyError(f"out-resp-len {resp_len} exceeds out-data-len {out_len}")
        data = body + fixed
        data_end = data + in_len + out_len
        unique_id = None
        if fields & CONN_FIELD_UNIQUE_ID:
            uid_at = body + pad_len(fixed + in_len + out_len)
            if uid_at + 8 > end:
                raise _BodyError("unique-id flagged but len ends before it")
            self._check_zero(buf, data_end, uid_at, "padding before unique-id")
            self._check_tail(buf, uid_at + 8, end)
            unique_id = self._u64.unpack_from(buf, uid_at)[0]
        else:
            self._check_tail(buf, data_end, end)
        return ConnectionData(
            conn_id,
            spec,
            buf[data : data + in_len],
            buf[data + in_len : data_end],
            resp_len,
            unique_id,
        )

    def _parse_watch(self, buf: bytes, body: int, end: int) -> Record:
        if end - body < self._watch.size:
            raise self._short(body, end, self._watch.size)
        conn_id, path_len, token_len = self._watch.unpack_from(buf, body)
        path_at = body + 8
        token_at = path_at + path_len
        self._check_tail(buf, token_at + token_len, end)
        return WatchData(
            conn_id,
            self._cstring(buf, path_at, path_len, "wpath"),
            self._cstring(buf, token_at, token_len, "token"),
        )

    def _parse_watch_ext(self, buf: bytes, body: int, end: int) -> Record:
        return self._watch_ext_record(buf, body, end).record

    def _watch_ext_record(self, buf: bytes, body: int, end: int) -> watchext.Parsed:
        layout = self._watch_ext_layout
        try:
            if layout == watchext.AUTO:
                return watchext.detect(buf, body, end, self._watch, self._u16)
            return watchext.parse(buf, body, end, layout, self._watch, self._u16)
        except watchext.LayoutError as exc:
            raise _BodyError(str(exc)) from None

    def _parse_transaction(self, buf: bytes, body: int, end: int) -> Record:
        self._check_tail(buf, body + 8, end)
        conn_id, tx_id = self._tx.unpack_from(buf, body)
        return TransactionData(conn_id, tx_id)

    def _parse_node(self, buf: bytes, body: int, end: int) -> Record:
        if end - body < self._node.size:
            raise self._short(body, end, self._node.size)
        conn_id, tx_id, path_len, value_len, access, perm_count = self._node.unpack_from(buf, body)
        perms_at = body + 16
        path_at = perms_at + 4 * perm_count
        value_at = path_at + path_len
        value_end = value_at + value_len
        if (
            not 0 <= end - value_end < RECORD_ALIGN
            or buf.count(0, value_end, end) != end - value_end
        ):
            self._check_tail(buf, value_end, end)
        raw_perms = buf[perms_at:path_at]
        perms = self._perms_cache.get(raw_perms)
        if perms is None:
            perms = self._decode_perms(raw_perms)
        if buf.find(0, path_at, value_at) != value_at - 1:
            self._cstring(buf, path_at, path_len, "node path")  # raises the precise error
        if conn_id == 0:
            if access or tx_id:
                raise _BodyError(f"committed node with access 0x{access:x} / tx-id {tx_id}")
        elif access & ~3:
            raise _BodyError(f"reserved access bits 0x{access:x}")
        return NodeData(
            buf[path_at : value_at - 1].decode(TEXT_ENCODING, TEXT_ERRORS),
            buf[value_at:value_end],
            perms,
            conn_id,
            tx_id,
            _ACCESS[access],
        )

    def _decode_perms(self, raw: bytes) -> tuple[Permission, ...]:
        perms = tuple(self._decode_perm(raw[at : at + 4]) for at in range(0, len(raw), 4))
        if len(self._perms_cache) >= _PERMS_CACHE_MAX:
            self._perms_cache.clear()
        self._perms_cache[raw] = perms
        return perms

    def _decode_perm(self, raw: bytes) -> Permission:
        if raw[1] & ~PERM_FLAG_STALE:
            raise _BodyError(f"reserved permission flag bits 0x{raw[1]:02x}")
        letter = chr(raw[0])
        domid = self._perm_domid.unpack_from(raw, 2)[0]
        return Permission(letter, domid, bool(raw[1] & PERM_FLAG_STALE))

    def _parse_quota_list(
        self, buf: bytes, values_at: int, count: int, end: int
    ) -> tuple[tuple[Quota, ...], int]:
        names_at = values_at + 4 * count
        if names_at > end:
            raise _BodyError(f"{count} quota values do not fit in len")
        values = struct.unpack_from(self._u32.format[0] + "I" * count, buf, values_at)
        names = []
        at = names_at
        for _ in range(count):
            stop = buf.find(0, at, end)
            if stop == -1:
                raise _BodyError("quota name not NUL-terminated within len")
            if stop == at:
                raise _BodyError("empty quota name")
            names.append(decode_text(buf[at:stop]))
            at = stop + 1
        return tuple(zip(names, values, strict=True)), at

    def _check_quota_tail(self, buf: bytes, content_end: int, end: int) -> None:
        if (
            0 <= end - content_end < RECORD_ALIGN
            and buf.count(0, content_end, end) != end - content_end
        ):
            self.dirty_padding.append((self._index, self._base + self._pos))
            return
        self._check_tail(buf, content_end, end)

    def _parse_global_quota(self, buf: bytes, body: int, end: int) -> Record:
        if end - body < self._two_u16.size:
            raise self._short(body, end, self._two_u16.size)
        n_dom, n_glob = self._two_u16.unpack_from(buf, body)
        quotas, content_end = self._parse_quota_list(buf, body + 4, n_dom + n_glob, end)
        self._check_quota_tail(buf, content_end, end)
        return GlobalQuotaData(quotas[:n_dom], quotas[n_dom:])

    def _parse_domain(self, buf: bytes, body: int, end: int) -> Record:
        if end - body < self._domain.size:
            raise self._short(body, end, self._domain.size)
        domid, n_quota, features = self._domain.unpack_from(buf, body)
        quotas, content_end = self._parse_quota_list(buf, body + 8, n_quota, end)
        self._check_quota_tail(buf, content_end, end)
        assert self.header is not None
        return DomainData(domid, features if self.header.version >= STREAM_V2 else 0, quotas)


def decode_image(data: bytes) -> tuple[Header, list[Located]]:
    """Decode a whole in-memory image (tests, small files)."""
    decoder = ImageDecoder()
    decoder.feed(data)
    located = list(decoder.records())
    decoder.close()
    assert decoder.header is not None
    return decoder.header, located
