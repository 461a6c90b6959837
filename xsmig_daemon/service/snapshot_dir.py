"""The snapshot directory: names of new snapshots, listing them, and what retention prunes.

Names carry their creation time in UTC (``scheduled-20261125T143000Z.img``) so that retention
needs no metadata beyond the directory listing. Only ``scheduled-`` snapshots are pruned;
``manual-`` ones (``xsmig ctl snapshot`` without ``--output``) and ``lu-`` copies made by the
live-update hook stay until an operator removes them. Calls are plain file-system calls on
one local directory: each is a handful of metadata operations, too small to need a thread.
"""

from __future__ import annotations

import calendar
import contextlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .runner import manifest_of

KINDS = ("scheduled", "manual", "lu", "lu-rejected")
IMAGE_SUFFIX = ".img"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(?P<kind>[a-z-]+?)-(?P<stamp>\d{8}T\d{6}Z)(?:\.(?P<seq>\d+))?\.img$")


@dataclass(frozen=True, slots=True, order=True)
class SnapshotEntry:
    created: float
    sequence: int
    path: Path
    kind: str


def stamp(wall_time: float) -> str:
    return time.strftime(_STAMP_FORMAT, time.gmtime(wall_time))


def parse_name(path: Path) -> SnapshotEntry | None:
    match = _NAME.match(path.name)
    if match is None or match["kind"] not in KINDS:
        return None
    created = float(calendar.timegm(time.strptime(match["stamp"], _STAMP_FORMAT)))
    return SnapshotEntry(created, int(match["seq"] or 0), path, match["kind"])


def new_snapshot_path(directory: Path, kind: str, wall_time: float) -> Path:
    """A fresh name in ``directory``; a numbered suffix if that second is already taken."""
    if kind not in KINDS:
        raise ValueError(f"unknown snapshot kind {kind!r}")
    base = f"{kind}-{stamp(wall_time)}"
    candidate = directory / f"{base}{IMAGE_SUFFIX}"
    sequence = 1
    while candidate.exists() or manifest_of(candidate).exists():
        candidate = directory / f"{base}.{sequence}{IMAGE_SUFFIX}"
        sequence += 1
    return candidate


def list_snapshots(directory: Path, kind: str) -> list[SnapshotEntry]:
    """Complete snapshots of ``kind`` (image and manifest both present), oldest first."""
    entries: list[SnapshotEntry] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        entry = parse_name(directory / name)
        if entry is not None and entry.kind == kind and manifest_of(entry.path).exists():
            entries.append(entry)
    entries.sort()
    return entries


def select_expired(
    entries: list[SnapshotEntry], now: float, keep_count: int, keep_age: float
) -> list[SnapshotEntry]:
    """What retention removes: beyond the ``keep_count`` newest, or older than ``keep_age``
    seconds (0 = no age limit). The newest snapshot is never selected."""
    if not entries:
        return []
    ordered = sorted(entries)
    newest = ordered[-1]
    expired = ordered[: max(0, len(ordered) - keep_count)]
    if keep_age:
        expired += [e for e in ordered if now - e.created > keep_age and e not in expired]
    return sorted(e for e in expired if e != newest)


def remove_snapshot(entry: SnapshotEntry) -> None:
    """Delete the manifest first: a snapshot without manifest is never listed as complete."""
    for path in (manifest_of(entry.path), entry.path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
