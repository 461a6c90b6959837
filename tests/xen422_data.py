"""The dumps a real Xen 4.22.0 xenstored wrote (tests/data/xen-4.22/) and their references.

The references are what the live daemon and Debian's ``xenstore-ls -f -p /`` reported before
each dump, and the watches the scenario registered (``NAME.json``, written by
``make_dumps.py``), never what xsmig decodes. ``walk_422`` finds record boundaries with
``struct`` alone, knowing 4.22's writer rule for WATCH_DATA_EXTENDED (docs/upstream.md).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent / "data" / "xen-4.22"
NAMES = ("watches", "depth-ok", "domains", "unintroduced")
#: every committed dump: each scenario at -v 2 and -v 1, and the second dump of depth-ok
DUMPS = (*NAMES, *(f"{name}-v1" for name in NAMES), "depth-ok-second")

_LS_LINE = re.compile(r'^(?P<path>/\S*) = "(?P<value>.*)"   \((?P<perms>[^()]*)\)$')


def dump(name: str) -> bytes:
    return (DIR / f"{name}.img").read_bytes()


def facts(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DIR / f"{name}.json").read_text())
    return loaded


def listing(name: str) -> dict[str, tuple[str, str]]:
    """The recorded ``xenstore-ls -f -p /``: {path: (printed value, perms)}."""
    result = {}
    for line in facts(name)["ls"].splitlines():
        match = _LS_LINE.match(line)
        assert match is not None, line
        result[match["path"]] = (match["value"], match["perms"])
    return result


@dataclass(frozen=True)
class Frame:
    offset: int
    type: int
    declared: int
    #: body bytes really written (differs from ``declared`` for broken type 8 records)
    written: int
    body: bytes


def walk_422(data: bytes) -> list[Frame]:
    """Record frames of a 4.22 dump: a type 8 body is 8 fixed bytes, wpath, token, padded
    to 8, whatever its declared len says."""
    frames = []
    offset = 16
    while True:
        record_type, declared = struct.unpack_from("<II", data, offset)
        written = declared
        if record_type == 8:
            path_len, token_len = struct.unpack_from("<HH", data, offset + 12)
            written = (8 + path_len + token_len + 7) & ~7
        frames.append(
            Frame(offset, record_type, declared, written, data[offset + 8 : offset + 8 + written])
        )
        if record_type == 0:
            return frames
        offset += 8 + written


def watch_strings(frame: Frame) -> tuple[str, str]:
    """wpath and token of a type 3 body, or of a 4.22-writer type 8 body (both at 8)."""
    path_len, token_len = struct.unpack_from("<HH", frame.body, 4)
    path = frame.body[8 : 8 + path_len - 1].decode()
    token = frame.body[8 + path_len : 8 + path_len + token_len - 1].decode()
    return path, token
