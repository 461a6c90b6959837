"""The ``xsmig`` command: argparse front end, one module per subcommand.

Every subcommand module in ``xsmig_daemon.commands`` exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` to a function ``(args) -> int`` (the exit code).

Exit codes (documented in README): 0 success / valid / identical; 1 the answer is "no"
(invalid image, images differ) or the operation failed; 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

#: Subcommand modules under xsmig_daemon.commands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "inspect",
    "verify",
    "diff",
    "convert",
    "snapshot",
    "migrate",
    "mockd",
    "serve",
    "ctl",
    "lu_hook",
)


def successor_argv(argv: list[str]) -> list[str]:
    """``xsmig OPTIONS -U`` is how a live update names ``xsmig`` as the successor (C passes
    the daemon's own options plus ``-U``): that is ``xsmig mockd OPTIONS -U``."""
    if ("-U" in argv or "--live-update" in argv) and (not argv or argv[0].startswith("-")):
        return ["mockd", *argv]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xsmig",
        description="Capture, inspect, verify and hand over the state of xenstored.",
        epilog="exit codes: 0 ok/valid/identical, 1 invalid/different/failed, 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"xsmig {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"xsmig_daemon.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(successor_argv(sys.argv[1:] if argv is None else list(argv)))
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("xsmig: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # A reader such as `head` went away; nothing more to say.
        return EXIT_FAIL
    return code


if __name__ == "__main__":
    sys.exit(main())
