"""The exporter (xsmig_daemon.export) behind the service's ``SnapshotRunner`` protocol.

One snapshot = ``run_export`` of the whole state (mode live-update) into a file: the exporter
writes the image and ``FILE.manifest.json`` atomically and leaves nothing behind when it fails
or is cancelled, which is what SIGTERM and request deadlines rely on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from ..export import Destination, ExportPlan, Source, run_export
from ..export.policy import PlanSettings, SourceSettings, export_plan, open_source
from ..export.writer import StreamStats
from ..image.profiles import get_profile
from .config import Config
from .runner import ProgressCallback

#: Seconds between two progress reports (each becomes an sd_notify STATUS= datagram).
PROGRESS_INTERVAL = 1.0


class ExporterRunner:
    """Snapshots with the service's ``[xenstored]`` settings, by the export policy that
    ``xsmig snapshot`` follows too (``export/policy.py``)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def source(self) -> Source:
        """``xenstored.source``; ``auto`` asks the daemon, as ``xsmig snapshot`` does."""
        xs = self.config.xenstored
        return await open_source(
            SourceSettings(
                kind=xs.source,
                socket=xs.socket,
                timeout=xs.request_timeout,
                probe_timeout=xs.connect_timeout,
                freeze_deadline=xs.freeze_deadline,
                freeze_mode=xs.freeze_mode,
            )
        )

    def plan(self, target: str, source: Source) -> ExportPlan:
        settings = PlanSettings(
            profile=get_profile(target), timeout=self.config.xenstored.request_timeout
        )
        return export_plan(settings, source)

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
