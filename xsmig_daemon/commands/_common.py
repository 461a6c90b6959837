"""What the offline image commands share: turning every expected failure into one line
on stderr and an exit code (never a traceback).

Cheap to import: a command's parser is built from this module alone, and the image code is
imported only when the command runs (``xsmig verify --help`` reads no record model).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..cli import EXIT_FAIL


def fail(command: str, message: str) -> int:
    print(f"xsmig {command}: {message}", file=sys.stderr)
    return EXIT_FAIL


def guarded(
    command: str, body: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    """Wrap a handler: image and file errors become ``xsmig CMD: PATH: reason`` and exit 1
    (both kinds name their stream themselves)."""

    def handler(args: argparse.Namespace) -> int:
        from ..image.errors import EncodeError, ImageError  # noqa: PLC0415 - start-up time
        from ..imagefile import ImageFileError  # noqa: PLC0415

        try:
            return body(args)
        except (ImageFileError, ImageError) as exc:
            return fail(command, str(exc))
        except EncodeError as exc:
            return fail(command, f"cannot encode: {exc}")
        except MemoryError:
            return fail(command, "out of memory")

    return handler


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print a JSON document (schema in docs/cli.md)"
    )
