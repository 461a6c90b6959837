"""``xsmig diff A B``: do two images hold the same xenstore state?"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..cli import EXIT_FAIL, EXIT_OK
from ._common import add_json_flag, guarded

if TYPE_CHECKING:
    from ..image.compare import ImageState

NAME = "diff"
DIFF_SCHEMA = "xsmig.diff/1"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="compare the state held by two images",
        description=(
            "Compare two images semantically: committed nodes (value, permissions with the "
            "stale flag, sibling order), connections matched by identity (ring: domid, "
            "socket: fd) with their pending data, watches and transactions, domains, quotas "
            "and global data. Conn-ids, the stream version and byte order are not compared, "
            "nor fd numbers (process artefacts: 4.20 numbers its fds one lower than 4.17): "
            "GLOBAL_DATA's fds are left out and socket connections renumbered by a constant "
            "are matched in stream order; a note on stderr says when fds differ, --fds "
            "compares them too. "
            "Exit 0 same, 1 different (one difference per line on stdout) or an image is "
            "unreadable/invalid (one line on stderr), 2 usage error."
        ),
    )
    parser.add_argument("a", metavar="A", help="first image, or - for standard input")
    parser.add_argument("b", metavar="B", help="second image, or - for standard input")
    parser.add_argument(
        "--fds",
        action="store_true",
        help="also report differing fd numbers (GLOBAL_DATA's, each socket connection's)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=guarded(NAME, run))


def load_state(path: str, against: ImageState | None = None) -> ImageState:
    from ..image.compare import ImageState  # noqa: PLC0415 - start-up time, as in run()
    from ..image.profiles import DUMP_SOURCE  # noqa: PLC0415
    from ..imagefile import open_image  # noqa: PLC0415

    # Any daemon's dump, Xen 4.22's included (its depth watches compare as depth-less).
    stream = open_image(path, DUMP_SOURCE, collect_defects=True)
    state: ImageState | None = None
    for located in stream:
        if state is None:
            assert stream.header is not None
            state = ImageState(stream.header, against)
        state.add(located.record)
    assert state is not None  # a stream without records fails in the decoder first
    return state


def run(args: argparse.Namespace) -> int:
    if args.a == "-" and args.b == "-":
        print(f"xsmig {NAME}: only one of A and B can be standard input", file=sys.stderr)
        return 2
    # Imported here, not at the top: `xsmig diff --help` needs none of it (start-up time).
    import json  # noqa: PLC0415

    from ..image.compare import compare, fd_differences  # noqa: PLC0415
    from ..imagefile import display_name  # noqa: PLC0415

    state_a = load_state(args.a)
    state_b = load_state(args.b, against=state_a)
    fd_only = fd_differences(state_a, state_b)
    differences = compare(state_a, state_b, fds=args.fds)
    if fd_only and not args.fds:
        print(
            f"xsmig {NAME}: note: {len(fd_only)} fd numbers differ (process artefacts, not "
            "compared; --fds lists them)",
            file=sys.stderr,
        )
    if args.json:
        document = {
            "schema": DIFF_SCHEMA,
            "a": display_name(args.a),
            "b": display_name(args.b),
            "identical": not differences,
            "differences": [d.to_json() for d in differences],
            "fd_differences": [d.to_json() for d in fd_only],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        for difference in differences:
            sys.stdout.write(f"{difference}\n")
    return EXIT_FAIL if differences else EXIT_OK
