"""``xsmig lu-hook``: the new binary handed to ``xenstore-control live-update -f`` (through a
wrapper script), run inside the old xenstored's process (docs/service.md, "lu-hook")."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from ..imagefile import ImageFileError, atomic_output
from ..service.config import ConfigError, load_config
from ..service.lu_hook import run_hook, wrapper_script
from .serve import DEFAULT_CONFIG

NAME = "lu-hook"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="live-update hook: check and keep xenstored's state_dump, then exec the successor",
        description=(
            "Run by xenstored itself during 'xenstore-control live-update -f WRAPPER' (WRAPPER "
            "from --install-wrapper): verifies $XENSTORED_RUNDIR/state_dump against "
            "lu_hook.profile, keeps a copy and manifest in snapshots.directory, converts it if "
            "lu_hook.convert is set, then execs lu_hook.successor with ARGS (xenstored's own "
            "arguments, including -U). See docs/service.md for what happens to a bad dump."
        ),
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help=f"default {DEFAULT_CONFIG}"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--print-wrapper", action="store_true", help="print the wrapper script and exit"
    )
    action.add_argument(
        "--install-wrapper",
        nargs="?",
        const="",
        metavar="PATH",
        help="write the wrapper script (mode 0755) to PATH (default: lu_hook.wrapper)",
    )
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, metavar="-- ARGS", help="xenstored's arguments"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        # In a live update the wrapper now starts the successor unchecked (see wrapper_script).
        print(f"<2>xsmig {NAME}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.print_wrapper or args.install_wrapper is not None:
        script = wrapper_script(
            sys.executable, os.path.abspath(args.config), config.lu_hook.successor
        )
        if args.print_wrapper:
            sys.stdout.write(script)
            return EXIT_OK
        return _install(args.install_wrapper or config.lu_hook.wrapper, script)
    hook_args = args.args[1:] if args.args[:1] == ["--"] else args.args
    run_hook(args.config, hook_args)  # returns only if it could not exec the successor
    return EXIT_FAIL


def _install(path: str, script: str) -> int:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_output(path, force=True) as out:
            out.write(script.encode())
            os.fchmod(out.fileno(), 0o755)
    except (ImageFileError, OSError) as exc:
        print(f"xsmig {NAME}: {path}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(path)
    return EXIT_OK
