"""What the offline image commands share: reading an image as a record stream, and turning
every expected failure into one line on stderr and an exit code (never a traceback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

from ..cli import EXIT_FAIL
from ..image.decoder import Located
from ..image.errors import EncodeError, ImageError
from ..image.profiles import PROFILES, Profile
from ..image.validate import ImageReader
from ..imagefile import ImageFileError, display_name, read_chunks

TARGETS = tuple(PROFILES)


class ImageStream(ImageReader):
    """The records of the image at ``path`` (``-`` = stdin), decoded chunk by chunk.

    With a ``profile`` every record is also validated against it; without one only framing
    is checked.
    """

    def __init__(
        self, path: str, profile: Profile | None = None, *, migration: bool = False
    ) -> None:
        super().__init__(read_chunks(path), profile, migration=migration)
        self.path = path


def fail(command: str, message: str) -> int:
    print(f"xsmig {command}: {message}", file=sys.stderr)
    return EXIT_FAIL


def guarded(
    command: str, body: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    """Wrap a handler: image and file errors become ``xsmig CMD: PATH: reason`` and exit 1.

    ``body`` raises ``ImageError`` with ``exc.image_path`` set (see ``located_error``) or an
    ``ImageFileError`` that already names its path.
    """

    def handler(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except ImageFileError as exc:
            return fail(command, str(exc))
        except ImageError as exc:
            where = getattr(exc, "image_path", None)
            prefix = f"{where}: " if where is not None else ""
            return fail(command, f"{prefix}{exc}")
        except EncodeError as exc:
            return fail(command, f"cannot encode: {exc}")
        except MemoryError:
            return fail(command, "out of memory")

    return handler


def located_error(exc: ImageError, name: str) -> ImageError:
    """Attach the image's display name to an error so that ``guarded`` can name it."""
    exc.image_path = name  # type: ignore[attr-defined]
    return exc


def records_of(stream: ImageStream) -> Iterator[Located]:
    """Iterate ``stream``, tagging any ImageError with the stream's path."""
    try:
        yield from stream
    except ImageError as exc:
        raise located_error(exc, display_name(stream.path)) from None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print a JSON document (schema in docs/cli.md)"
    )
