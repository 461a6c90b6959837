"""The exporter: sources (wire, image; introspect later) -> records -> writer -> sinks.

    plan = ExportPlan(mode="live-update", profile=get_profile("xen-4.17"), header=Header(1))
    result = await run_export(WireSource(socket), plan, Destination("/tmp/x.img"))

A new source implements ``source.Source`` (``kind``, ``location``, ``async export(plan, out)
-> SourceReport``) and writes records, in the target's order and without END, to ``out``.
"""

from __future__ import annotations

from .errors import ExportError, RewindImpossibleError, SinkError, SourceError
from .imagesource import ImageSource
from .run import Destination, ExportResult, run_export
from .source import ExportPlan, Mode, RecordOutput, Source, SourceReport
from .wire import WireSource

__all__ = [
    "Destination",
    "ExportError",
    "ExportPlan",
    "ExportResult",
    "ImageSource",
    "Mode",
    "RecordOutput",
    "RewindImpossibleError",
    "SinkError",
    "Source",
    "SourceError",
    "SourceReport",
    "WireSource",
    "run_export",
]
