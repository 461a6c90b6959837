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


def c_atoi(raw: bytes) -> int:
    """C's atoi: optional sign and leading digits, anything else ignored (0 if none)."""
    match = _LEADING_INT.match(raw)
    return int(match.group(1)) if match else 0
