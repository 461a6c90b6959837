"""``xsmig convert IN OUT``: rewrite an image for another version, byte order or loader."""

from __future__ import annotations

import argparse
from typing import Any

from ..image.targets import TARGETS, target_help
from ._common import guarded

NAME = "convert"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="rewrite an image for another stream version, byte order or loader",
        description=(
            "Read IN, rewrite it for the target and write OUT atomically (a temporary file "
            "renamed into place; - writes to stdout). The output records are checked against "
            "the format rules and the target profile as they are written; an error names the "
            "input record. "
            "What the target cannot hold makes the command fail, naming it, unless --lossy is "
            "given: then it is dropped and listed on stderr. What a Xen 4.22 dump holds broken "
            "(depth watches whose depth it never wrote, DOMAIN_DATA of domains its loader does "
            "not know) is always repaired and listed. For a real xenstored target the "
            "output is laid out as that version loads and writes it (GLOBAL_DATA fds, dom0's "
            "ring first, special nodes where it puts them; a real dump of another version gets "
            "the target's fd numbers); each such change is a note on stderr. "
            "Exit 0 written, 1 failed, 2 usage."
        ),
    )
    parser.add_argument("input", metavar="IN", help="input image, or - for standard input")
    parser.add_argument("output", metavar="OUT", help="output image, or - for standard output")
    parser.add_argument(
        "--version",
        type=int,
        choices=(1, 2),
        help="stream version to write (default: the input's, if the target loads it)",
    )
    parser.add_argument(
        "--endian",
        choices=("little", "big"),
        help="byte order to write (default: little for xen-* targets, else the input's)",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="spec",
        help=target_help() + " (default: spec)",
    )
    parser.add_argument(
        "--keep-fds",
        action="store_true",
        help="xen-* targets: keep a real dump's fd numbers instead of the target version's",
    )
    parser.add_argument(
        "--lossy", action="store_true", help="drop what the target cannot hold, and list it"
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(handler=guarded(NAME, run))


def run(args: argparse.Namespace) -> int:
    # The rewrite lives in its own module: `xsmig convert --help` imports none of it.
    from .convert_run import run_guarded  # noqa: PLC0415 - start-up time

    return run_guarded(args)
