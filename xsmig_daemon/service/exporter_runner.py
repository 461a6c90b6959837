"""Adapter from the service's ``SnapshotRunner`` protocol to the exporter (xsmig_daemon.export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Config
from .runner import ProgressCallback


class ExporterUnavailableError(RuntimeError):
    pass


class ExporterRunner:
    """Snapshots through the exporter with the service's xenstored settings."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def run(
        self, output: Path, *, target: str, force: bool, progress: ProgressCallback
    ) -> dict[str, Any]:
        raise ExporterUnavailableError(
            "the exporter (xsmig_daemon.export) has no file-snapshot API yet"
        )


def exporter_runner(config: Config) -> ExporterRunner:
    return ExporterRunner(config)
