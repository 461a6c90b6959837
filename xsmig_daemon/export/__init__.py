"""The exporter: sources (wire, introspect, image) -> records -> writer -> sinks.

    source = await open_source(SourceSettings("auto", socket))
    plan = export_plan(PlanSettings(get_profile("xen-4.17")), source)
    result = await run_export(source, plan, Destination("/tmp/x.img"))

``policy.py`` is the one export policy (which source, which stream for a target) that the
CLI and the service both follow. A new source implements ``source.Source`` (``kind``,
``location``, ``async export(plan, out) -> SourceReport``) and writes records, in the
target's order and without END, to ``out``.
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
