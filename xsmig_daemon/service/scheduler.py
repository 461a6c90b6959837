"""Scheduled snapshots: one every ``snapshots.interval`` seconds, counted from the start of
the previous one, then retention. A reload wakes the schedule so a new interval (or 0, which
disables it) takes effect at once. Uses trio's clock, so tests drive it with MockClock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .log import get_logger

if TYPE_CHECKING:
    from .app import Service

log = get_logger("schedule")


async def run_schedule(service: Service) -> None:
    last_start = trio.current_time()
    while True:
        interval = service.config.snapshots.interval
        changed = service.config_changed
        if not interval:
            service.next_scheduled = None
            await changed.wait()
            continue
        due = last_start + interval
        service.next_scheduled = service.wall_clock() + max(0.0, due - trio.current_time())
        with trio.move_on_at(due):
            await changed.wait()
        if trio.current_time() < due:
            continue  # reloaded before it was due: recompute with the new interval
        last_start = trio.current_time()
        log.debug("scheduled snapshot due")
        await service.scheduled_snapshot()
