"""Permission lists: wire parsing/formatting and C's access rule (``perm_for_conn``)."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from ..image.records import DOMID_ANY, Permission
from .errors import XsError

PermList = tuple[Permission, ...]


class Access(enum.IntFlag):
    NONE = 0
    READ = 1
    WRITE = 2
    OWNER = 4


ALL_ACCESS = Access.READ | Access.WRITE | Access.OWNER
_LETTER_ACCESS = {
    "n": Access.NONE,
    "r": Access.READ,
    "w": Access.WRITE,
    "b": Access.READ | Access.WRITE,
}


def letter_access(letter: str) -> Access:
    # C loads an unknown letter as "none".
    return _LETTER_ACCESS.get(letter, Access.NONE)


def parse_wire_perm(raw: bytes) -> Permission:
    """One ``r5`` style entry; the number is parsed like C's strtol(base 0)."""
    try:
        text = raw.decode("ascii")
        letter, number = text[0], text[1:]
        domid = int(number, 0) if number else -1
    except (UnicodeDecodeError, IndexError, ValueError):
        raise XsError("EINVAL", f"bad permission {raw!r}") from None
    if letter not in _LETTER_ACCESS or not 0 <= domid <= 0xFFFF:
        raise XsError("EINVAL", f"bad permission {raw!r}")
    return Permission(letter, domid)


def format_perms(perms: Sequence[Permission]) -> bytes:
    return b"".join(f"{perm.access}{perm.domid}".encode() + b"\0" for perm in perms)


def access_for(domid: int, privileged: bool, target: int | None, perms: PermList) -> Access:
    """What a connection acting as ``domid`` (optionally for ``target``) may do."""
    owner = perms[0].domid
    if privileged or owner == domid or (target is not None and owner == target):
        return ALL_ACCESS
    for perm in perms[1:]:
        if perm.stale:
            continue
        if perm.domid in (domid, DOMID_ANY) or (target is not None and perm.domid == target):
            return letter_access(perm.access)
    return letter_access(perms[0].access)
