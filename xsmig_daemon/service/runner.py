"""What the service needs from the exporter: take one snapshot into a file, with its manifest.

The service depends on this small protocol, not on the exporter's internals, so the control
socket, the schedule and their tests do not change when the exporter does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

#: Receives a short human-readable progress line ("1200 records, 9800 nodes/s").
ProgressCallback = Callable[[str], None]


class SnapshotRunner(Protocol):
    async def run(
        self, output: Path, *, target: str, force: bool, progress: ProgressCallback
    ) -> dict[str, Any]:
        """Write a complete image at ``output`` and its manifest at
        ``manifest_path(output)``, or nothing at all (cancellation included); return the
        manifest."""
        ...


def manifest_path(image: Path) -> Path:
    """``FILE.manifest.json`` next to an image (the exporter's convention, issue 4)."""
    return image.with_name(image.name + ".manifest.json")
