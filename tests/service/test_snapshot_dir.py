"""Snapshot names and the retention rule."""

from __future__ import annotations

import calendar
from pathlib import Path

from xsmig_daemon.service.snapshot_dir import (
    SnapshotEntry,
    list_snapshots,
    new_snapshot_path,
    parse_name,
    select_expired,
)

T0 = calendar.timegm((2026, 11, 25, 14, 30, 0, 0, 0, 0))


def test_names_carry_utc_time_and_kind(tmp_path: Path) -> None:
    path = new_snapshot_path(tmp_path, "scheduled", T0 + 0.7)
    assert path.name == "scheduled-20261125T143000Z.img"
    entry = parse_name(path)
    assert entry == SnapshotEntry(float(T0), 0, path, "scheduled")


def test_same_second_gets_a_numbered_name(tmp_path: Path) -> None:
    first = new_snapshot_path(tmp_path, "manual", T0)
    first.write_bytes(b"x")
    second = new_snapshot_path(tmp_path, "manual", T0)
    assert second.name == "manual-20261125T143000Z.1.img"
    assert parse_name(second) == SnapshotEntry(float(T0), 1, second, "manual")


def test_unrelated_files_are_ignored(tmp_path: Path) -> None:
    for name in ("notes.txt", "scheduled-2026.img", "other-20261125T143000Z.img"):
        (tmp_path / name).write_text("keep")
    assert list_snapshots(tmp_path, "scheduled") == []


def test_incomplete_snapshot_without_manifest_is_not_listed(tmp_path: Path) -> None:
    image = new_snapshot_path(tmp_path, "scheduled", T0)
    image.write_bytes(b"x")
    assert list_snapshots(tmp_path, "scheduled") == []
    image.with_name(image.name + ".manifest.json").write_text("{}")
    assert [e.path for e in list_snapshots(tmp_path, "scheduled")] == [image]


def _entries(ages: list[float], now: float) -> list[SnapshotEntry]:
    return [
        SnapshotEntry(now - age, 0, Path(f"/s/scheduled-{i}.img"), "scheduled")
        for i, age in enumerate(ages)
    ]


def test_retention_by_count() -> None:
    entries = _entries([500, 400, 300, 200, 100], now=T0)
    expired = select_expired(entries, T0, keep_count=3, keep_age=0)
    assert [e.created for e in expired] == [T0 - 500, T0 - 400]


def test_retention_by_age() -> None:
    entries = _entries([500, 400, 300, 200, 100], now=T0)
    expired = select_expired(entries, T0, keep_count=10, keep_age=250)
    assert [e.created for e in expired] == [T0 - 500, T0 - 400, T0 - 300]


def test_the_newest_is_never_pruned() -> None:
    entries = _entries([9000, 8000], now=T0)
    expired = select_expired(entries, T0, keep_count=1, keep_age=10)
    assert [e.created for e in expired] == [T0 - 9000]
