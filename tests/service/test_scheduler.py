"""Scheduled snapshots and retention, on trio's virtual clock (no real waiting)."""

from __future__ import annotations

import calendar
from pathlib import Path

import trio
import trio.testing

from xsmig_daemon.service.app import Service
from xsmig_daemon.service.config import load_config
from xsmig_daemon.service.scheduler import run_schedule
from xsmig_daemon.service.snapshot_dir import list_snapshots

from .conftest import make_config, write_config
from .fakes import FakeRunner

T0 = float(calendar.timegm((2026, 11, 25, 12, 0, 0, 0, 0, 0)))


def _service(base: Path, runner: FakeRunner, **snapshots: object) -> Service:
    config = make_config(base, snapshots=dict(snapshots))
    return Service(config, runner, wall_clock=lambda: T0 + trio.current_time())


def _complete(base: Path) -> list[str]:
    return [e.path.name for e in list_snapshots(base / "snaps", "scheduled")]


def _leftovers(base: Path) -> list[str]:
    return sorted(p.name for p in (base / "snaps").iterdir() if p.name.endswith(".tmp"))


async def test_creates_on_schedule_and_prunes_by_count(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    runner = FakeRunner(step_seconds=2.0)  # 8 virtual seconds per snapshot
    service = _service(short_dir, runner, interval=60, keep_count=3, keep_age=0)
    seen_while_writing: list[int] = []
    runner.on_start.append(lambda _output: seen_while_writing.append(len(_complete(short_dir))))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_schedule, service)
        await trio.sleep(10 * 60 + 30)
        nursery.cancel_scope.cancel()
    assert runner.calls == 10
    # Started at 60, 120, ... 600 s: one interval apart, counted from each start.
    assert runner.started == [60.0 * k for k in range(1, 11)]
    assert _complete(short_dir) == [
        "scheduled-20261125T120800Z.img",
        "scheduled-20261125T120900Z.img",
        "scheduled-20261125T121000Z.img",
    ]
    # Pruning happens only after a new snapshot is complete: while each one was being
    # written, the previous keep_count were all still there.
    assert seen_while_writing == [0, 1, 2, 3, 3, 3, 3, 3, 3, 3]
    assert service.counters["pruned"] == 7
    assert _leftovers(short_dir) == []


async def test_prunes_by_age(short_dir: Path, autojump_clock: trio.testing.MockClock) -> None:
    runner = FakeRunner(step_seconds=1.0)
    service = _service(short_dir, runner, interval=60, keep_count=100, keep_age=150)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_schedule, service)
        await trio.sleep(6 * 60 + 30)
        nursery.cancel_scope.cancel()
    # Pruned right after the snapshot of 360 s completed (at 364 s): 240 s is 124 s old,
    # 180 s is 184 s old.
    assert _complete(short_dir) == [
        "scheduled-20261125T120400Z.img",
        "scheduled-20261125T120500Z.img",
        "scheduled-20261125T120600Z.img",
    ]


async def test_failed_snapshot_prunes_nothing_and_leaves_no_file(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    runner = FakeRunner(step_seconds=1.0)
    service = _service(short_dir, runner, interval=60, keep_count=2, keep_age=0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_schedule, service)
        await trio.sleep(3 * 60 + 30)
        kept = _complete(short_dir)
        assert len(kept) == 2
        runner.fail_next = 2
        await trio.sleep(2 * 60)
        nursery.cancel_scope.cancel()
    assert runner.calls == 5
    assert _complete(short_dir) == kept
    assert service.counters["failed"] == 2
    assert service.last_error is not None and "injected failure" in service.last_error
    assert sorted(p.name for p in (short_dir / "snaps").iterdir()) == sorted(
        [*kept, *(k + ".manifest.json" for k in kept)]
    )


async def test_reload_applies_a_new_interval_at_once(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = write_config(short_dir / "c.toml", short_dir, snapshots={"interval": 3600})
    runner = FakeRunner()
    service = Service(load_config(path), runner, wall_clock=lambda: T0 + trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_schedule, service)
        await trio.sleep(100)
        assert runner.calls == 0
        write_config(path, short_dir, snapshots={"interval": 60})
        service.reload()
        await trio.sleep(1)
        assert runner.started == [100.0]  # 60 s since the schedule started: due already
        await trio.sleep(60)
        assert runner.started == [100.0, 160.0]
        write_config(path, short_dir, snapshots={"interval": 0})
        service.reload()
        await trio.sleep(3600)
        nursery.cancel_scope.cancel()
    assert runner.calls == 2
    assert service.next_scheduled is None
