"""The ``xsmig`` command: argparse front end, one module per subcommand.

Every subcommand module in ``xsmig_daemon.commands`` exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` to a function ``(args) -> int`` (the exit code).

Only the module of the subcommand being run is imported (the others get a placeholder
parser carrying their one-line help from ``COMMANDS``): ``xsmig inspect`` never imports
trio or the daemon code, and ``xsmig --help`` imports no subcommand at all.

Exit codes (documented in README): 0 success / valid / identical; 1 the answer is "no"
(invalid image, images differ) or the operation failed; 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

#: Subcommand -> (module under xsmig_daemon.commands, one-line help), in --help order. The
#: help repeats what the module registers (a test keeps them equal). A module may register
#: more than one subcommand (migrate: migrate and migrate-in).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "demo",
        "run the bundled mock, populate it, snapshot it, verify and inspect the image",
    ),
    "inspect": ("inspect", "summarise an image: header, record counts, connections, domains, tree"),
    "verify": ("verify", "check an image against the format rules and a loader's requirements"),
    "diff": ("diff", "compare the state held by two images"),
    "convert": ("convert", "rewrite an image for another stream version, byte order or loader"),
    "snapshot": ("snapshot", "export a running xenstored (or an image) as a migration stream"),
    "migrate": ("migrate", "move one guest's xenstore state from one running daemon to another"),
    "migrate-in": ("migrate", "load a one-domain migration image into a running daemon"),
    "mockd": ("mockd", "run a mock xenstored on a unix socket"),
    "serve": ("serve", "run the dom0 service (control socket, scheduled snapshots, sd_notify)"),
    "ctl": ("ctl", "send a command to the running xsmig service"),
    "lu-hook": (
        "lu_hook",
        "live-update hook: check and keep xenstored's state_dump, then exec the successor",
    ),
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))


def successor_argv(argv: list[str]) -> list[str]:
    """``xsmig OPTIONS -U`` is how a live update names ``xsmig`` as the successor (C passes
    the daemon's own options plus ``-U``): that is ``xsmig mockd OPTIONS -U``."""
    if ("-U" in argv or "--live-update" in argv) and (not argv or argv[0].startswith("-")):
        return ["mockd", *argv]
    return argv


class Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (``xsmig CMD: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(only: str | None = None, *, full: bool = True) -> argparse.ArgumentParser:
    """The parser; with ``full=False`` only subcommand ``only`` is really registered."""
    parser = Parser(
        prog="xsmig",
        description="Capture, inspect, verify and hand over the state of xenstored.",
        epilog="exit codes: 0 ok/valid/identical, 1 invalid/different/failed, 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"xsmig {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = COMMANDS[only][0] if only in COMMANDS else None
    registered: set[str] = set()
    for name, (module_name, help_text) in COMMANDS.items():
        if full or module_name == wanted:
            if module_name not in registered:  # it registers all of its subcommands
                registered.add(module_name)
                module = importlib.import_module(f"xsmig_daemon.commands.{module_name}")
                module.register(subparsers)
        else:
            placeholder = subparsers.add_parser(name, help=help_text, add_help=False)
            placeholder.set_defaults(handler=None)
    return parser


def _subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (xsmig's own options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = successor_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(_subcommand(arguments), full=False)
    args = parser.parse_args(arguments)
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
