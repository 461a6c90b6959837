"""The exporter (xsmig_daemon.export) behind the service's ``SnapshotRunner`` protocol.

One snapshot = ``run_export`` of the whole state (mode live-update) into a file: the exporter
writes the image and ``FILE.manifest.json`` atomically and leaves nothing behind when it fails
or is cancelled, which is what SIGTERM and request deadlines rely on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from ..commands.snapshot import C_EVTCHN_FD
from ..export import Destination, ExportPlan, Source, WireSource, run_export
from ..export.introspect import IntrospectSource, answers_introspect
from ..export.writer import StreamStats
from ..image.profiles import get_profile
from ..image.records import Header
from .config import Config
from .runner import ProgressCallback

#: Seconds between two progress reports (each becomes an sd_notify STATUS= datagram).
PROGRESS_INTERVAL = 1.0


class ExporterRunner:
    """Snapshots with the service's ``[xenstored]`` settings."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def source(self) -> Source:
        """``xenstored.source``; ``auto`` asks the daemon, as ``xsmig snapshot`` does."""
        xs = self.config.xenstored
        kind = xs.source
        if kind == "auto":
            introspect = await answers_introspect(xs.socket, xs.connect_timeout)
            kind = "introspect" if introspect else "wire"
        if kind == "introspect":
            return IntrospectSource(
                xs.socket, timeout=xs.request_timeout, freeze_deadline=xs.freeze_deadline
            )
        return WireSource(xs.socket, timeout=xs.request_timeout)

    def plan(self, target: str, source: Source) -> ExportPlan:
        profile = get_profile(target)
        version = 1 if 1 in profile.versions else max(profile.versions)
        if source.kind == "introspect" and 2 in profile.versions:
            # As xsmig snapshot: the mock's state has watch depths, features and unique ids,
            # which version 1 cannot hold.
            version = 2
        return ExportPlan(
            mode="live-update",
            profile=profile,
            header=Header(version, False),
            evtchn_fd=C_EVTCHN_FD if profile.is_c_loader else -1,
            timeout=self.config.xenstored.request_timeout,
        )

    async def run(
        self, output: Path, *, target: str, force: bool, progress: ProgressCallback
    ) -> dict[str, Any]:
        last = -PROGRESS_INTERVAL

        def report(stats: StreamStats) -> None:
            nonlocal last
            now = trio.current_time()
            if now - last >= PROGRESS_INTERVAL:
                last = now
                progress(f"{sum(stats.records.values())} records, {stats.nodes} nodes")

        source = await self.source()
        result = await run_export(
            source,
            self.plan(target, source),
            Destination(str(output), force=force),
            progress=report,
        )
        return result.manifest


def exporter_runner(config: Config) -> ExporterRunner:
    return ExporterRunner(config)
