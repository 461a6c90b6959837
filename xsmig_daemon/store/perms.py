"""Permission lists: wire parsing/formatting and C's access rule (``perm_for_conn``)."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

from ..image.records import DOMID_ANY, DOMID_FIRST_RESERVED, U16_MAX, Permission
from .errors import XsError
from .wireargs import c_strtol_u32

PermList = tuple[Permission, ...]
_WIRE_PERM = re.compile(rb"([nrwb])([-+]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*))")


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
    """One ``r5`` style entry; the number is read like C's strtol(base 0).

    C asks the hypervisor whether the named domain exists and marks an entry for a domain
    that cannot exist as stale. Without a hypervisor every domid below the reserved range
    exists; DOMID_ANY is valid too. A number outside 16 bits cannot be represented at all.
    """
    match = _WIRE_PERM.fullmatch(raw)
    if match is None:
        raise XsError("EINVAL", f"bad permission {raw!r}")
    letter, number = match.group(1).decode(), match.group(2).decode()
    digits = number.lstrip("+-")
    if digits.lower().startswith("0x"):
        domid = int(digits, 16)
    elif digits.startswith("0") and len(digits) > 1:
        domid = int(digits, 8)
    else:
        domid = int(digits)
    if number.startswith("-") or domid > U16_MAX:
        raise XsError("EINVAL", f"permission domid {number} out of range")
    stale = domid >= DOMID_FIRST_RESERVED and domid != DOMID_ANY
    return Permission(letter, domid, stale)


def parse_c_perm(raw: bytes, *, domid_any: bool) -> Permission:
    """One entry as C 4.17 / 4.20 read it: any number strtol takes, truncated to 32 bits;
    an entry naming a domain that cannot exist (reserved or beyond 16 bits, DOMID_ANY
    included unless the version knows it) is kept but ignored (stale)."""
    domid = c_strtol_u32(raw[1:]) if raw[:1] in (b"n", b"r", b"w", b"b") else None
    if domid is None:
        raise XsError("EINVAL", f"bad permission {raw!r}")
    stale = domid >= DOMID_FIRST_RESERVED and not (domid_any and domid == DOMID_ANY)
    return Permission(raw[:1].decode(), domid, stale)


def perms_payload(perms: Sequence[Permission]) -> bytes:
    """GET_PERMS's reply: ``r0\0w1\0`` (image/summary.format_perms is the text for people),
    the domid as C prints it, a signed int (an entry read from ``r-1`` shows -1)."""
    return b"".join(
        f"{perm.access}{perm.domid - (1 << 32) if perm.domid >= 1 << 31 else perm.domid}".encode()
        + b"\0"
        for perm in perms
    )


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
