"""The ``image`` source: an existing image file, checked, converted for the target, forwarded.

The input is decoded chunk by chunk and validated against the format rules (profile
``spec``); each record then goes through the shared ``ImageConverter`` for the target
profile and header, whose losses become fidelity notes. ``--domain N`` keeps only what
relates to domain N (``select.py``). Nothing is frozen; nothing is retried.
"""

from __future__ import annotations

from collections.abc import Iterator

import trio

from ..image.convert import ImageConverter
from ..image.decoder import ImageDecoder, Located
from ..image.encoder import HEADER_SIZE
from ..image.errors import ImageError
from ..image.records import (
    ConnectionData,
    DomainData,
    End,
    Header,
    NodeData,
    Record,
    RingSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
)
from ..image.validate import StreamValidator
from ..imagefile import ImageFileError, read_chunks
from .errors import SourceError
from .select import node_relates_to
from .source import ExportPlan, RecordOutput, SourceReport


def peek_header(path: str) -> Header:
    """The header of the image at ``path`` (to default the output version to the input's)."""
    decoder = ImageDecoder()
    try:
        for chunk in read_chunks(path, HEADER_SIZE):
            decoder.feed(chunk)
            next(decoder.records(), None)
            break
    except (ImageError, ImageFileError) as exc:
        raise SourceError(f"image source {path}: {exc}") from None
    if decoder.header is None:
        raise SourceError(f"image source {path}: no image header")
    return decoder.header


class ImageSource:
    kind = "image"

    def __init__(self, path: str) -> None:
        self.location = path

    async def export(self, plan: ExportPlan, out: RecordOutput) -> SourceReport:
        report = SourceReport(self.kind, self.location)
        keep = _DomainFilter(plan.domid) if plan.mode == "domain" else None
        converter: ImageConverter | None = None
        try:
            for located in self._records():
                await trio.lowlevel.checkpoint()
                record = located.record
                if isinstance(record, End):
                    continue
                if converter is None:
                    converter = ImageConverter(self._header, plan.header, plan.profile)
                if keep is not None and not keep(record):
                    continue
                converted = converter.convert(record)
                if converted is None:
                    continue
                if isinstance(converted, NodeData) and converted.committed:
                    report.nodes += 1
                if isinstance(converted, ConnectionData) and isinstance(converted.spec, RingSpec):
                    report.domains.append(converted.spec.domid)
                await out.write(converted)
        except (ImageError, ImageFileError) as exc:
            raise SourceError(f"image source {self.location}: {exc}") from None
        if converter is not None:
            report.fidelity_notes.extend(
                f"lost converting for {plan.profile.name}: {line}"
                for line in converter.losses.lines()
            )
        return report

    def _records(self) -> Iterator[Located]:
        decoder = ImageDecoder()
        validator: StreamValidator | None = None
        for chunk in read_chunks(self.location):
            decoder.feed(chunk)
            for item in decoder.records():
                if validator is None:
                    assert decoder.header is not None
                    self._header = decoder.header
                    validator = StreamValidator(decoder.header)
                validator.check(item)
                yield item
        decoder.close()


class _DomainFilter:
    """Keeps the records of a ``--domain N`` stream (select.py's rule) from a full image."""

    def __init__(self, domid: int | None) -> None:
        assert domid is not None
        self.domid = domid
        self.conn_ids: set[int] = set()

    def __call__(self, record: Record) -> bool:
        match record:
            case ConnectionData():
                if isinstance(record.spec, RingSpec) and record.spec.domid == self.domid:
                    self.conn_ids.add(record.conn_id)
                    return True
                return False
            case WatchData() | WatchDataExtended() | TransactionData():
                return record.conn_id in self.conn_ids
            case NodeData():
                if record.conn_id:
                    return record.conn_id in self.conn_ids
                return node_relates_to(record, self.domid)
            case DomainData():
                return record.domid == self.domid
        return False
