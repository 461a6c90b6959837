"""``xsmig mockd``: run the mock xenstored until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import trio

from ..mockd import MockDaemon, default_socket_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mockd",
        help="run a mock xenstored on a unix socket",
        description=(
            "Serve the xenstore protocol on a unix socket, like C xenstored. Introduced "
            "domains get a stand-in ring at RUNDIR/domain/DOMID. Prints one line "
            "'xsmig mockd: listening on PATH' when ready; stops on SIGTERM or SIGINT."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--socket",
        metavar="PATH",
        help="socket path (default: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, "
        "else /var/run/xenstored/socket)",
    )
    where.add_argument("--rundir", metavar="DIR", help="serve DIR/socket, domains in DIR/domain")
    parser.set_defaults(handler=run_mockd)


async def serve(daemon: MockDaemon) -> None:
    # Catch the signals before announcing readiness, so none is missed in between.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            path = await nursery.start(daemon.run)
            print(f"xsmig mockd: listening on {path}", flush=True)
            async for signum in signals:
                print(f"xsmig mockd: {signal.Signals(signum).name}, stopping", file=sys.stderr)
                nursery.cancel_scope.cancel()
                break


def run_mockd(args: argparse.Namespace) -> int:
    if args.rundir:
        socket_path, rundir = os.path.join(args.rundir, "socket"), args.rundir
    else:
        socket_path = args.socket or default_socket_path()
        rundir = os.path.dirname(socket_path) or "."
    try:
        trio.run(serve, MockDaemon(socket_path, rundir))
    except OSError as exc:
        print(f"xsmig mockd: cannot serve {socket_path}: {exc}", file=sys.stderr)
        return 2
    return 0
