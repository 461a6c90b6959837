"""``xsmig verify IMAGE [--target PROFILE]``: would this loader accept the image?"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..cli import EXIT_FAIL, EXIT_OK
from ..image.targets import TARGETS, target_help
from ._common import add_json_flag, fail

if TYPE_CHECKING:
    from ..image.errors import ImageError

NAME = "verify"
VERIFY_SCHEMA = "xsmig.verify/1"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="check an image against the format rules and a loader's requirements",
        description=(
            "Decode and validate an image for a loader profile: framing, the ordering rules "
            "of the format, and what that loader needs. Exit 0 if valid, 1 if not (the "
            "one-line error goes to stderr). Warnings (what the loader would drop) go to "
            "stderr and do not change the exit code."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="image file, or - for standard input")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="spec",
        help="loader profile to check against (default: spec): " + target_help(),
    )
    parser.add_argument(
        "--migration",
        action="store_true",
        help="a migration stream of one domain: node parents may already exist in the loader",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `xsmig verify --help` needs none of it (start-up time).
    import json  # noqa: PLC0415

    from ..image.errors import ImageError  # noqa: PLC0415
    from ..image.profiles import get_profile  # noqa: PLC0415
    from ..imagefile import ImageFileError, display_name, open_image  # noqa: PLC0415

    name = display_name(args.image)
    stream = open_image(
        args.image, get_profile(args.target), migration=args.migration, collect_defects=True
    )
    count = 0
    error: dict[str, Any] | None = None
    try:
        for _ in stream:
            count += 1
    except ImageError as exc:
        error = _error_json(exc)
    except ImageFileError as exc:
        error = {
            "message": exc.reason,
            "reason": exc.reason,
            "record_index": None,
            "offset": None,
            "record_type": None,
        }
    for warning in stream.warnings:
        print(f"xsmig {NAME}: {name}: warning: {warning}", file=sys.stderr)
    # Defects that `xsmig convert` repairs: every one is named, not just the first.
    defects = [_error_json(exc) for exc in stream.defects]
    messages = [defect["message"] for defect in defects]
    if error is not None:
        messages.append(error["message"])
    elif defects:
        error = dict(defects[-1])
        error["message"] += f" ({len(defects)} in all; xsmig convert --target {args.target} "
        error["message"] += "repairs them)"
        messages[-1] = error["message"]
    for message in messages[:-1]:
        print(f"xsmig {NAME}: {name}: {message}", file=sys.stderr)
    if args.json:
        header = stream.header
        document = {
            "schema": VERIFY_SCHEMA,
            "image": name,
            "target": args.target,
            "valid": error is None,
            "records": count if error is None else None,
            "header": None
            if header is None
            else {
                "version": header.version,
                "byte_order": "big" if header.big_endian else "little",
            },
            "warnings": stream.warnings,
            "defects": defects,
            "error": error,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if error is not None:
        return fail(NAME, f"{name}: {error['message']}")
    if not args.json:
        print(f"{name}: valid for {args.target} ({count} records)")
    return EXIT_OK if error is None else EXIT_FAIL


def _error_json(exc: ImageError) -> dict[str, Any]:
    from ..image.errors import type_name  # noqa: PLC0415 - as in run()

    return {
        "message": exc.message,
        "reason": exc.reason,
        "record_index": exc.record_index,
        "offset": exc.offset,
        "record_type": None if exc.record_type is None else type_name(exc.record_type),
    }
