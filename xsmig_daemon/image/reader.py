"""Reading an image, sans-I/O: ``ImageParser`` is fed bytes and returns the records they
complete (``Located``: index, byte offset, record), validated against a profile if one is
given; ``ImageReader`` is the same over an iterable of chunks.

Errors are ``ImageError``\\ s. Given a ``name`` (a path, ``unix:PATH``, ...), every error a
reader raises carries it (``ImageError.source``), so ``str(exc)`` is one line saying which
stream, which record, which byte and why, whoever prints it.

Framing alone (``profile=None``: ``xsmig inspect``) needs only the decoder: the validator and
the profiles are imported when a profile is asked for, which keeps the start-up of the
offline commands short (``image/pipeline.py`` holds the rewriting half).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .decoder import ImageDecoder, Located
from .errors import ImageError
from .records import Header, Record

if TYPE_CHECKING:
    from .profiles import Profile
    from .validate import StreamValidator


def _as_profile(profile: str | Profile) -> Profile:
    from .profiles import as_profile  # noqa: PLC0415 - see the module docstring

    return as_profile(profile)


def _dirty_padding_warnings(decoder: ImageDecoder) -> list[str]:
    """One warning per quota record whose padding held non-zero bytes (Xen 4.22 does that)."""
    return [
        f"record {index} at byte {offset} (0x{offset:x}): non-zero padding after the quota "
        "names (ignored, as the format says; Xen 4.22 leaves heap bytes there)"
        for index, offset in decoder.dirty_padding
    ]


class ImageParser:
    """Push reader: ``feed(bytes)`` returns the records completed by those bytes, decoded and,
    with a ``profile``, validated; ``close()`` says the input has ended.

    ``header`` is set as soon as the preamble is read (and checked against the profile
    then); ``warnings`` once END has been checked; ``offset`` counts the bytes consumed.
    Without a profile only framing is checked. ``migration``, ``preorder`` and
    ``collect_defects`` are the validator's modes (``validate.StreamValidator``); the
    collected defects (Xen 4.22's broken records, which a rewrite repairs) are in ``defects``,
    also when a later error ends the stream.
    """

    def __init__(
        self,
        profile: str | Profile | None = "spec",
        *,
        migration: bool = False,
        preorder: bool = False,
        collect_defects: bool = False,
        name: str | None = None,
    ) -> None:
        self.profile = None if profile is None else _as_profile(profile)
        self.migration = migration
        self.preorder = preorder
        self.collect_defects = collect_defects
        self.name = name
        self.header: Header | None = None
        self.warnings: list[str] = []
        self.defects: list[ImageError] = []
        self._decoder = ImageDecoder()
        self._validator: StreamValidator | None = None

    @property
    def offset(self) -> int:
        return self._decoder.offset

    def feed(self, data: bytes) -> list[Located]:
        return list(self.stream(data))

    def stream(self, data: bytes) -> Iterator[Located]:
        """``feed`` as a generator: each record as soon as it is parsed (no list per chunk)."""
        try:
            yield from self._records(data)
        except ImageError as exc:
            raise exc.named(self.name) from None

    def close(self) -> None:
        try:
            self._decoder.close()
        except ImageError as exc:
            raise exc.named(self.name) from None
        self.warnings.extend(_dirty_padding_warnings(self._decoder))
        if self._validator is not None:
            self.warnings.extend(self._validator.warnings)
            self._validator = None

    def _records(self, data: bytes) -> Iterator[Located]:
        decoder = self._decoder
        if data:
            decoder.feed(data)
        records = decoder.records()
        if self.header is None and decoder.header is None:
            # The header is parsed with the first record (or alone, when no record is
            # complete yet); a version the profile does not load is refused right then.
            first = next(records, None)
            if decoder.header is not None:
                self._started()
            if first is None:
                return
            records = itertools.chain((first,), records)
        if self._validator is None:
            yield from records
            return
        check = self._validator.check
        for item in records:
            check(item)
            yield item

    def _started(self) -> None:
        header = self._decoder.header
        assert header is not None
        self.header = header
        if self.profile is not None:
            from .validate import StreamValidator  # noqa: PLC0415 - see the module docstring

            self._validator = StreamValidator(
                header,
                self.profile,
                migration=self.migration,
                preorder=self.preorder,
                collect_defects=self.collect_defects,
            )
            self.defects = self._validator.defects


class ImageReader:
    """Pull reader: the records of a stream arriving as ``chunks`` (see ``ImageParser``).

    Iterating yields records as they complete and raises an ``ImageError`` at the first
    problem, including a stream that ends early. ``header`` and ``warnings`` as in
    ``ImageParser``. The chunk source's own errors (a file that cannot be read) pass through.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        profile: str | Profile | None = "spec",
        *,
        migration: bool = False,
        collect_defects: bool = False,
        name: str | None = None,
    ) -> None:
        self._chunks = chunks
        self._parser = ImageParser(
            profile, migration=migration, collect_defects=collect_defects, name=name
        )

    @property
    def profile(self) -> Profile | None:
        return self._parser.profile

    @property
    def header(self) -> Header | None:
        return self._parser.header

    @property
    def warnings(self) -> list[str]:
        return self._parser.warnings

    @property
    def name(self) -> str | None:
        return self._parser.name

    @property
    def defects(self) -> list[ImageError]:
        return self._parser.defects

    def __iter__(self) -> Iterator[Located]:
        parser = self._parser
        for chunk in self._chunks:
            yield from parser.stream(chunk)
        parser.close()

    def records(self) -> list[Record]:
        """Every record, END included (for the restore paths, which need the whole stream)."""
        return [item.record for item in self]


def read_image(
    chunks: Iterable[bytes],
    profile: str | Profile = "spec",
    warnings: list[str] | None = None,
    *,
    migration: bool = False,
    collect_defects: bool = False,
) -> Iterator[Located]:
    """Decode and validate a chunked stream (see ``ImageReader``); warnings go to ``warnings``."""
    reader = ImageReader(chunks, profile, migration=migration, collect_defects=collect_defects)
    yield from reader
    if warnings is not None:
        warnings.extend(reader.warnings)


__all__ = ["ImageParser", "ImageReader", "read_image"]
