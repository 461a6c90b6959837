"""The ``image`` source: an existing image file, checked, converted for the target, forwarded.

The input is decoded chunk by chunk and validated against the format rules (profile
``spec``); each record then goes through the shared converter for the target
profile and header, whose losses become fidelity notes. ``--domain N`` keeps only what
relates to domain N (``select.py``). These steps are ``imagestage.ImageStage``, shared
with the introspect source. Nothing is frozen; nothing is retried.
"""

from __future__ import annotations

import trio

from ..image.encoder import HEADER_SIZE
from ..image.errors import ImageError
from ..image.pipeline import ImageParser
from ..image.profiles import DUMP_SOURCE
from ..image.records import Header
from ..imagefile import ImageFileError, read_chunks
from .errors import SourceError
from .imagestage import ImageStage
from .source import ExportPlan, RecordOutput, SourceReport


def peek_header(path: str) -> Header:
    """The header of the image at ``path`` (to default the output version to the input's)."""
    parser = ImageParser(None)
    try:
        for chunk in read_chunks(path, HEADER_SIZE):
            parser.feed(chunk)
            break
    except (ImageError, ImageFileError) as exc:
        raise SourceError(f"image source {path}: {exc}") from None
    if parser.header is None:
        raise SourceError(f"image source {path}: no image header")
    return parser.header


class ImageSource:
    kind = "image"

    def __init__(self, path: str) -> None:
        self.location = path

    async def export(self, plan: ExportPlan, out: RecordOutput) -> SourceReport:
        report = SourceReport(self.kind, self.location)
        # Any daemon's dump, Xen 4.22's broken records included: the rewrite repairs them and
        # the manifest lists the repairs.
        stage = ImageStage(plan, report, check=DUMP_SOURCE, collect_defects=True)
        try:
            for chunk in read_chunks(self.location):
                for record in stage.feed(chunk):
                    await trio.lowlevel.checkpoint()
                    await out.write(record)
            stage.close()
        except (ImageError, ImageFileError) as exc:
            raise SourceError(f"image source {self.location}: {exc}") from None
        report.fidelity_notes.extend(stage.loss_notes())
        report.left_to_toolstack = stage.left_to_toolstack
        return report
