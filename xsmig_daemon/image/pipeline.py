"""The two pipelines every image user goes through, sans-I/O.

Reading (``image/reader.py``, re-exported here): ``ImageParser`` is fed bytes and returns
validated records (``Located``: index, byte offset, record); ``ImageReader`` is the same over
an iterable of chunks. Rewriting:
``RecordRewriter`` converts records for a target (``ImageConverter`` plus an optional filter)
, ``CheckedEncoder`` validates records against a profile and encodes them, and
``ImageRewriter`` chains the two, naming the *input* record when the output would be
refused. ``ImageRewrite`` chains reading and rewriting over chunks.

Errors are ``ImageError``\\ s. Given a ``name`` (a path, ``unix:PATH``, ...), every error a
pipeline raises carries it (``ImageError.source``), so ``str(exc)`` is one line saying which
stream, which record, which byte and why, whoever prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from . import watchext
from .convert import ConversionReport, ImageConverter
from .decoder import Located
from .encoder import RecordEncoder
from .errors import ImageError
from .loader_layout import LoaderLayout
from .profiles import Profile
from .reader import ImageParser, ImageReader, read_image
from .records import End, Header, Record
from .validate import StreamValidator


class RecordRewriter:
    """Records of a ``source`` stream -> records of a ``target`` stream for ``profile``.

    END and the records ``keep`` refuses are dropped silently (a filter, e.g. one domain);
    what the target cannot hold goes to ``report``.
    """

    def __init__(
        self,
        source: Header,
        target: Header,
        profile: Profile,
        keep: Callable[[Record], bool] | None = None,
    ) -> None:
        self._converter = ImageConverter(source, target, profile)
        self._keep = keep

    @property
    def report(self) -> ConversionReport:
        return self._converter.report

    def rewrite(self, record: Record) -> Record | None:
        if isinstance(record, End) or (self._keep is not None and not self._keep(record)):
            return None
        return self._converter.convert(record)


class CheckedEncoder:
    """Records -> the bytes of one stream, each record validated against ``profile``
    (``None``: not validated) before its bytes are handed out, so a stream a loader would
    refuse is never written.

    ``preamble()`` first, then ``encode(record)``; ``offset`` is the bytes produced so far,
    ``warnings`` the validator's (complete after END). Errors name the output record.
    """

    def __init__(
        self,
        header: Header,
        profile: Profile | None,
        *,
        migration: bool = False,
        preorder: bool = False,
    ) -> None:
        self.header = header
        # The WATCH_DATA_EXTENDED layout the target's loader parses (xen-4.22: its own).
        layout = watchext.DOC if profile is None else profile.watch_ext_layout
        self._encoder = RecordEncoder(header, watch_ext_layout=layout)
        self._validator = (
            None
            if profile is None
            else StreamValidator(header, profile, migration=migration, preorder=preorder)
        )
        self.index = 0
        self.offset = 0

    @property
    def warnings(self) -> list[str]:
        return [] if self._validator is None else self._validator.warnings

    def preamble(self) -> bytes:
        data = self._encoder.preamble()
        self.offset = len(data)
        return data

    def encode(self, record: Record) -> bytes:
        # Encoding first: a record the stream cannot represent is the caller's EncodeError.
        data = self._encoder.encode(record)
        if self._validator is not None:
            self._validator.check(Located(self.index, self.offset, record))
        self.index += 1
        self.offset += len(data)
        return data


class ImageRewriter:
    """Records of a ``source`` stream -> bytes of a ``target`` stream that ``profile`` loads:
    ``RecordRewriter`` then ``CheckedEncoder``.

    ``preamble()`` first, then ``rewrite(located)`` per input record (END included: it ends
    the output). A refusal of an output record is an ``ImageError`` naming the *input* record
    that produced it.
    """

    def __init__(
        self,
        source: Header,
        target: Header,
        profile: Profile,
        layout: LoaderLayout | None = None,
    ) -> None:
        self.target = target
        self.profile = profile
        self._converter = ImageConverter(source, target, profile)
        self._encoder = CheckedEncoder(target, profile)
        #: For a real xenstored target: the records laid out as it loads them.
        self._layout = layout

    @property
    def report(self) -> ConversionReport:
        return self._converter.report

    @property
    def warnings(self) -> list[str]:
        """The output's validation warnings (complete once END was rewritten)."""
        return self._encoder.warnings

    def preamble(self) -> bytes:
        return self._encoder.preamble()

    def rewrite(self, located: Located) -> bytes:
        record = self._converter.convert(located.record)
        if record is None:
            return b""
        laid_out = [record] if self._layout is None else self._layout.feed(record)
        try:
            return b"".join(self._encoder.encode(item) for item in laid_out)
        except ImageError as exc:
            exc.record_index, exc.offset = located.index, located.offset
            exc.record_type = located.record.type
            raise


class ImageRewrite:
    """Read a chunked stream and rewrite it: iterating yields the output bytes.

    ``target_header`` picks the output's version and byte order from the input header.
    The input is checked against ``source_profile`` (``None``: framing only; the output is
    validated in any case). ``report``, ``warnings`` (the output's) and ``header`` (the
    input's) are complete when the iteration is; an empty stream raises ``ImageError``.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        profile: Profile,
        target_header: Callable[[Header], Header],
        *,
        source_profile: Profile | None = None,
        collect_defects: bool = False,
        name: str | None = None,
        layout: LoaderLayout | None = None,
    ) -> None:
        self.profile = profile
        self.name = name
        self.layout = layout
        self._reader = ImageReader(
            chunks, source_profile, collect_defects=collect_defects, name=name
        )
        self._target_header = target_header
        self.rewriter: ImageRewriter | None = None

    @property
    def header(self) -> Header | None:
        return self._reader.header

    @property
    def report(self) -> ConversionReport:
        return ConversionReport() if self.rewriter is None else self.rewriter.report

    @property
    def warnings(self) -> list[str]:
        return [] if self.rewriter is None else self.rewriter.warnings

    def __iter__(self) -> Iterator[bytes]:
        try:
            for located in self._reader:
                if self.rewriter is None:
                    assert self._reader.header is not None
                    target = self._target_header(self._reader.header)
                    self.rewriter = ImageRewriter(
                        self._reader.header, target, self.profile, self.layout
                    )
                    yield self.rewriter.preamble()
                yield self.rewriter.rewrite(located)
        except ImageError as exc:
            raise exc.named(self.name) from None
        if self.rewriter is None:
            raise ImageError("the stream holds no records").named(self.name)


__all__ = [
    "CheckedEncoder",
    "ImageParser",
    "ImageReader",
    "ImageRewrite",
    "ImageRewriter",
    "RecordRewriter",
    "read_image",
]
