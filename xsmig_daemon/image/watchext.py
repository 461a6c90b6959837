"""The three layouts of WATCH_DATA_EXTENDED (type 8) that exist in practice.

Body offsets (after the 8-byte record header); conn-id u32 at 0, wpath-len u16 at 4 and
token-len u16 at 6 in all three:

``doc``         the design document: depth u16 at 8, zero pad u16 at 10, wpath at 12;
                ``len = roundup(12 + wpath-len + token-len, 8)``.
``xen-4.22``    what Xen 4.22's *loader* parses (``struct xs_state_watch_ext`` with ``data[]``
                at 10): depth u16 at 8, wpath at 10. xsmig writes this layout for a
                ``xen-4.22`` target, deliberately unlike the document, because it is the
                only one that 4.22 restores depth watches from (docs/upstream.md);
                ``len = roundup(10 + wpath-len + token-len, 8)``.
``xen-4.22-writer``  what Xen 4.22's *writer* produces: it declares
                ``len = roundup(12 + wpath-len + token-len, 8)`` but writes only the first 8
                bytes of the struct, so the depth is never written, wpath starts at 8, and the
                record really ends at ``roundup(8 + wpath-len + token-len, 8)`` -- 8 bytes
                before its declared end when ``(wpath-len + token-len) % 8`` is 0, 5, 6 or 7.
                Decoded as ``UnwrittenDepthWatch``; never written by xsmig except to
                reproduce that defect (the record's own ``declared_len`` is kept).

The three are told apart by where the NUL terminators sit (a wpath never holds a NUL and
never is empty), so ``detect`` needs no outside hint; ``layout=`` forces one.

Sans-I/O, no trio.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .records import RECORD_ALIGN, UnwrittenDepthWatch, WatchDataExtended, decode_text

DOC = "doc"
XEN_422 = "xen-4.22"
XEN_422_WRITER = "xen-4.22-writer"
AUTO = "auto"
LAYOUTS = (DOC, XEN_422, XEN_422_WRITER)

#: Offset of wpath in the body, per layout.
PATH_AT = {DOC: 12, XEN_422: 10, XEN_422_WRITER: 8}
#: conn-id, wpath-len, token-len: the fixed bytes all three layouts share
SHARED_FIXED = 8
#: what 4.22's writer declares: sizeof(struct xs_state_watch_ext)
XEN_422_DECLARED_FIXED = 12


def roundup8(value: int) -> int:
    return (value + 7) & ~7


class LayoutError(ValueError):
    """The body does not fit the layout tried."""


@dataclass(frozen=True, slots=True)
class Parsed:
    record: WatchDataExtended | UnwrittenDepthWatch
    #: body bytes the record really occupies (its declared len, except for the 4.22 writer)
    consumed: int


def _cstring(buf: bytes, start: int, length: int, what: str) -> str:
    if length == 0:
        raise LayoutError(f"{what} length 0 (must include the NUL)")
    stop = start + length - 1
    if stop >= len(buf) or buf[stop] != 0:
        raise LayoutError(f"{what} not NUL-terminated")
    if buf.find(0, start, stop) != -1:
        raise LayoutError(f"{what} contains a NUL before its end")
    return decode_text(buf[start:stop])


def _zero_tail(buf: bytes, start: int, end: int) -> None:
    if start > end:
        raise LayoutError(f"fields need {start - end} bytes more than len provides")
    if end - start >= RECORD_ALIGN:
        raise LayoutError(f"len leaves {end - start} unused bytes after the fields")
    if buf.count(0, start, end) != end - start:
        raise LayoutError("non-zero padding")


def parse(  # noqa: PLR0917 (the decoder's own structs, passed for its byte order)
    buf: bytes, body: int, end: int, layout: str, fixed: struct.Struct, u16: struct.Struct
) -> Parsed:
    """Parse the type 8 body ``buf[body:end]`` in ``layout``; raises LayoutError."""
    if end - body < SHARED_FIXED:
        raise LayoutError(f"len {end - body} is shorter than the {SHARED_FIXED} fixed body bytes")
    conn_id, path_len, token_len = fixed.unpack_from(buf, body)
    path_at = body + PATH_AT[layout]
    token_at = path_at + path_len
    content_end = token_at + token_len
    if layout == XEN_422_WRITER:
        written = roundup8(content_end - body)
        declared = end - body
        if declared not in (written, roundup8(XEN_422_DECLARED_FIXED + path_len + token_len)):
            raise LayoutError(f"len {declared} fits neither {written} nor 4.22's declared form")
        _zero_tail(buf, content_end, body + written)
        path = _cstring(buf, path_at, path_len, "wpath")
        token = _cstring(buf, token_at, token_len, "token")
        return Parsed(UnwrittenDepthWatch(conn_id, path, token, declared), written)
    if end - body < PATH_AT[layout]:
        raise LayoutError(f"len {end - body} is shorter than the {PATH_AT[layout]} fixed bytes")
    depth = u16.unpack_from(buf, body + 8)[0]
    if layout == DOC and buf[body + 10] | buf[body + 11]:
        raise LayoutError(
            "non-zero pad at body bytes 10-11: not the documented layout "
            "(C HEAD's writer is known to produce broken type 8 records)"
        )
    _zero_tail(buf, content_end, end)
    path = _cstring(buf, path_at, path_len, "wpath")
    token = _cstring(buf, token_at, token_len, "token")
    return Parsed(WatchDataExtended(conn_id, path, token, depth), end - body)


def detect(buf: bytes, body: int, end: int, fixed: struct.Struct, u16: struct.Struct) -> Parsed:
    """The layout whose NULs and lengths fit; the document's error if none does."""
    try:
        return parse(buf, body, end, DOC, fixed, u16)
    except LayoutError as doc_error:
        for layout in (XEN_422, XEN_422_WRITER):
            try:
                return parse(buf, body, end, layout, fixed, u16)
            except LayoutError:
                continue
        raise doc_error from None


def xen422_reading(record: UnwrittenDepthWatch) -> str:
    """What 4.22's loader makes of a record its writer produced (depth at 8, wpath at 10)."""
    path = record.path.encode("utf-8", "surrogateescape") + b"\0"
    token = record.token.encode("utf-8", "surrogateescape") + b"\0"
    body = path + token
    depth = int.from_bytes(body[0:2], "little")
    data = body[2:] + bytes(2)
    seen_path = data[: data.index(0)]
    rest = data[len(path) :]
    seen_token = rest[: rest.index(0)] if 0 in rest else rest
    return f"watch {decode_text(seen_path)!r} token {decode_text(seen_token)!r} depth {depth}"


def defect(record: UnwrittenDepthWatch) -> str:
    """One line: what is wrong with a 4.22-writer record and what 4.22 would do with it."""
    written = record.written_len
    what = (
        f"WATCH_DATA_EXTENDED of watch {record.path!r} token {record.token!r} in Xen 4.22's "
        "writer layout: the depth was never written and wpath starts at body byte 8 "
        f"(4.22's loader reads it at 10 and would restore {xen422_reading(record)})"
    )
    if record.declared_len != written:
        what += (
            f"; len says {record.declared_len} bytes but {written} were written, so the "
            "loader loses the record boundary (FATAL: Inconsistent state data)"
        )
    return what
