"""``xsmig inspect IMAGE|-``: what is in an image (framing is checked, rules are not)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..cli import EXIT_OK
from ._common import add_json_flag, guarded

NAME = "inspect"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="summarise an image: header, record counts, connections, domains, tree",
        description=(
            "Print a summary of a migration image (header, record counts, connections, "
            "domains, quotas, tree statistics). Only the framing is checked; use "
            "`xsmig verify` for the ordering rules and a loader's requirements. "
            "Exit 0 on success, 1 if the image cannot be read or decoded."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="image file, or - for standard input")
    parser.add_argument(
        "--records", action="store_true", help="one line per record instead of the summary"
    )
    add_json_flag(parser)
    parser.set_defaults(handler=guarded(NAME, run))


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `xsmig inspect --help` needs none of it (start-up time).
    import json  # noqa: PLC0415

    from ..image.summary import ImageSummary, record_json, record_line  # noqa: PLC0415
    from ..imagefile import display_name, open_image  # noqa: PLC0415

    stream = open_image(args.image, None)
    out = sys.stdout
    if args.records:
        for located in stream:
            if args.json:
                out.write(json.dumps(record_json(located), sort_keys=False) + "\n")
            else:
                out.write(record_line(located) + "\n")
        return EXIT_OK
    summary: ImageSummary | None = None
    for located in stream:
        if summary is None:
            assert stream.header is not None
            summary = ImageSummary(stream.header)
        summary.add(located)
    assert summary is not None  # a stream without records fails in the decoder first
    if args.json:
        document = {"image": display_name(args.image), **summary.to_json()}
        document = {"schema": document.pop("schema"), **document}
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        out.write(f"image: {display_name(args.image)}\n{summary.to_text()}\n")
    return EXIT_OK
