"""Request arguments as C reads them: NUL-terminated strings, atoi, decimal ids."""

from __future__ import annotations

import re

from ..image.records import U16_MAX
from ..wire.framing import Message
from . import quotas as q
from .errors import XsError

_LEADING_INT = re.compile(rb"\s*([-+]?\d+)")


def strings(message: Message) -> list[bytes]:
    """The NUL-terminated strings of the payload; an unterminated tail is not one."""
    parts = message.payload.split(b"\0")
    return parts[:-1]


def one_arg(message: Message) -> bytes:
    args = strings(message)
    if len(args) != 1 or not message.payload.endswith(b"\0"):
        raise XsError("EINVAL", f"{message.describe()}: expected exactly one string")
    return args[0]


def exact_args(message: Message, count: int) -> list[bytes]:
    args = strings(message)
    if len(args) != count or not message.payload.endswith(b"\0"):
        raise XsError("EINVAL", f"{message.describe()}: expected {count} strings")
    return args


def parse_domid(raw: bytes) -> int:
    if not raw.isdigit() or int(raw) > U16_MAX:
        raise XsError("EINVAL", f"bad domid {raw!r}")
    return int(raw)


def parse_u32(raw: bytes) -> int:
    if not raw.isdigit() or int(raw) > q.UINT_MAX:
        raise XsError("EINVAL", f"bad number {raw!r}")
    return int(raw)


_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_LONG_MAX = (1 << 63) - 1


def c_strtol_u32(raw: bytes) -> int | None:
    """C's ``(unsigned int)strtol(raw, &end, 0)`` when all of ``raw`` is the number (else
    None): base detection, saturation at the 64-bit long limits, then 32-bit truncation."""
    match = _STRTOL.fullmatch(raw)
    if match is None:
        return None
    digits = match.group(2)
    if digits[:2].lower() == b"0x":
        value = int(digits, 16)
    elif digits[:1] == b"0" and len(digits) > 1:
        value = int(digits, 8)
    else:
        value = int(digits)
    value = -value if match.group(1) == b"-" else value
    value = max(min(value, _LONG_MAX), -_LONG_MAX - 1)
    return value & 0xFFFFFFFF


def c_atoi(raw: bytes) -> int:
    """C's atoi: optional sign and leading digits, anything else ignored (0 if none)."""
    match = _LEADING_INT.match(raw)
    return int(match.group(1)) if match else 0
