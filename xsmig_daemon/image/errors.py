"""Errors of the image codec.

Every error raised while reading a stream knows where it happened: the record index (0 is
the first record after the header, ``None`` for the header itself), the byte offset of the
record (or header) in the stream, and the record type if known; the reading pipeline adds
the stream's name (``source``). ``str(err)`` is one line.
"""

from __future__ import annotations

from .records import RecordType


def describe_type(record_type: int | None) -> str:
    if record_type is None:
        return "header"
    try:
        return RecordType(record_type).name
    except ValueError:
        return f"type {record_type}"


def type_name(record_type: int) -> str:
    """The record type as one word: ``NODE_DATA``, ``type-9`` for a reserved one."""
    return describe_type(record_type).replace(" ", "-")


class ImageError(Exception):
    """Base of everything the codec raises about a stream."""

    def __init__(
        self,
        reason: str,
        *,
        record_index: int | None = None,
        offset: int | None = None,
        record_type: int | None = None,
    ) -> None:
        self.reason = reason
        self.record_index = record_index
        self.offset = offset
        self.record_type = record_type
        #: The stream's name (a path, ``unix:PATH``) when the reader was given one.
        self.source: str | None = None
        super().__init__(self.message)

    def named(self, source: str | None) -> ImageError:
        """This error, saying which stream it is about (a name already set is kept)."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return self.message if self.source is None else f"{self.source}: {self.message}"

    @property
    def message(self) -> str:
        """Where and why, without the stream's name."""
        where: list[str] = []
        if self.record_index is not None:
            kind = "" if self.record_type is None else f" ({describe_type(self.record_type)})"
            where.append(f"record {self.record_index}{kind}")
        elif self.record_type is not None:
            where.append(describe_type(self.record_type))
        if self.offset is not None:
            where.append(f"at byte {self.offset} (0x{self.offset:x})")
        prefix = " ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class FramingError(ImageError):
    """The bytes do not form a well-framed stream (header, lengths, padding, END)."""


class TruncatedImageError(FramingError):
    """The stream ended before its END record."""


class SemanticError(ImageError):
    """The records are well framed but break the dependency rules of the format."""


class ProfileError(ImageError):
    """The stream is valid but the chosen loader profile would not load it as is."""


class EncodeError(ValueError):
    """A record cannot be represented in the requested stream (caller misuse)."""
