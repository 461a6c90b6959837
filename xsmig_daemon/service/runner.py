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
        ``manifest_of(output)``, or nothing at all (cancellation included); return the
        manifest."""
        ...


def manifest_of(image: Path) -> Path:
    """Where the manifest of ``image`` is: the exporter's ``FILE.manifest.json``.

    Spelled out here rather than imported from export/manifest.py because lu-hook, which
    runs inside xenstored's exec, must not import the exporter package (a test checks that
    both agree)."""
    return image.with_name(image.name + ".manifest.json")
