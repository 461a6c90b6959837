"""``FILE.manifest.json``: what an exported image holds and where it came from.

Schema ``xsmig.export-manifest/1`` (docs/export.md): image path, sha256, size, counts per
record type, source kind and location, mode (and domid), stream version, byte order and
target profile, start/end times (UTC, ISO 8601), freeze duration in seconds (null when the
source froze nothing), consistent-read attempts, introduced domains, fidelity notes.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..imagefile import atomic_output

if TYPE_CHECKING:
    from .source import ExportPlan, SourceReport
    from .writer import StreamStats

SCHEMA = "xsmig.export-manifest/1"

JSON = dict[str, Any]


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def build_manifest(
    *,
    image: str,
    plan: ExportPlan,
    report: SourceReport,
    stats: StreamStats,
    started: float,
    ended: float,
) -> JSON:
    return {
        "schema": SCHEMA,
        "image": image,
        "sha256": stats.sha256,
        "size": stats.size,
        "records": dict(sorted(stats.records.items())),
        "source": {"kind": report.kind, "location": report.location},
        "mode": plan.mode,
        "domid": plan.domid,
        "version": plan.header.version,
        "endian": "big" if plan.header.big_endian else "little",
        "target": plan.profile.name,
        "started_at": utc_iso(started),
        "ended_at": utc_iso(ended),
        "duration_s": round(ended - started, 6),
        "freeze_duration_s": report.freeze_duration,
        "attempts": report.attempts,
        "repair_rounds": report.repair_rounds,
        "domains": report.domains,
        "fidelity_notes": report.fidelity_notes,
        "warnings": stats.warnings,
    }


def write_manifest(path: str, manifest: JSON) -> None:
    """Atomically, like the image; replaces an older manifest (the caller checked --force)."""
    with atomic_output(path, force=True) as out:
        out.write((json.dumps(manifest, indent=2) + "\n").encode())


def manifest_path(image_path: str) -> str:
    return f"{image_path}.manifest.json"


def remove_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
