"""``xsmig serve --config FILE [--check]``: the dom0 service (docs/service.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from ..service.config import ConfigError, load_config
from ..service.lu_hook import readiness_problems

NAME = "serve"
DEFAULT_CONFIG = "/etc/xsmig/config.toml"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="run the dom0 service (control socket, scheduled snapshots, sd_notify)",
        description=(
            "Run the xsmig service: a control socket for 'xsmig ctl', scheduled snapshots "
            "with retention, sd_notify for a Type=notify unit, logs on stderr with journald "
            "priority prefixes. SIGHUP reloads the configuration; SIGTERM stops."
        ),
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help=f"default {DEFAULT_CONFIG}"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration and exit: 0 valid, 2 invalid (nothing is started)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"xsmig {NAME}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(f"{args.config}: configuration valid")
        # Only live updates need these: warnings, not errors.
        for problem in readiness_problems(config):
            print(f"xsmig {NAME}: warning: {problem}", file=sys.stderr)
        return EXIT_OK
    # Imported here so that --check and the other subcommands do not load trio.
    from ..service.main import serve  # noqa: PLC0415

    return EXIT_OK if serve(config) else EXIT_FAIL
