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
from ..export.writer import StreamStats
from ..image.profiles import get_profile
from ..image.records import Header
from .config import Config
from .runner import ProgressCallback


class ExporterUnavailableError(Exception):
    """The configured source is not implemented by the exporter."""


#: Seconds between two progress reports (each becomes an sd_notify STATUS= datagram).
PROGRESS_INTERVAL = 1.0


class ExporterRunner:
    """Snapshots with the service's ``[xenstored]`` settings."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def source(self) -> Source:
        xs = self.config.xenstored
        if xs.source == "introspect":
            # export/introspect.py has only the probe so far; "auto" reads over the wire.
            raise ExporterUnavailableError(
                "xenstored.source = introspect: the exporter has no introspect source yet "
                "(use auto or wire)"
            )
        return WireSource(xs.socket, timeout=xs.request_timeout)

    def plan(self, target: str) -> ExportPlan:
        profile = get_profile(target)
        version = 1 if 1 in profile.versions else max(profile.versions)
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

        result = await run_export(
            self.source(),
            self.plan(target),
            Destination(str(output), force=force),
            progress=report,
        )
        return result.manifest


def exporter_runner(config: Config) -> ExporterRunner:
    return ExporterRunner(config)
