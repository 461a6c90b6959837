"""``xsmig mockd``: run the mock xenstored until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from typing import Any

import trio

from .. import sockpath
from ..mockd import MockDaemon, default_socket_path, restore
from ..mockd.liveupdate import HANDOVER_ENV, LiveUpdater, Successor, load_successor
from ..mockd.restore import RestoreError
from ..mockd.standby import STANDBY_ENV
from ..mockd.successor import StandbyError, StandbySuccessor, confirm, load_standby
from ..service.sd_notify import Notifier
from ..store.compat import COMPATS, DEFAULT_COMPAT, get_compat
from ..store.liveupdate import SuccessorKind

#: xenstored 4.17 options that a live update from C passes on (its argv + -U): accepted and
#: ignored. Flags, then options taking a value.
_XENSTORED_FLAGS = ("-D", "-K", "-N", "-R", "-V", "-I", "-P")
_XENSTORED_VALUES = ("-E", "-F", "-S", "-t", "-A", "-M", "-Q", "-q", "-T", "-W", "-w", "-m", "-p")


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
    parser.add_argument(
        "-U",
        "--live-update",
        action="store_true",
        help="successor of a live update: restore RUNDIR/state_dump and adopt the inherited "
        "sockets (see docs/liveupdate.md)",
    )
    parser.add_argument(
        "--lu-successor",
        choices=[kind.value for kind in SuccessorKind],
        default=SuccessorKind.MOCK.value,
        help="what a live update hands over to: the mock (all state, open transactions "
        "included) or a real xenstored: xen-4.17 or xen-4.20 (a v1 image in that version's "
        "order; -v 1 with the mock also selects xen-4.17) or xen-4.22 (v2 image in its "
        "loader's layout; -v 1 then gives a v1 image). What it cannot hold refuses the "
        "update unless -F",
    )
    parser.add_argument(
        "--compat",
        choices=list(COMPATS),
        default=DEFAULT_COMPAT,
        help="answer every request as this xenstored does: Xen 4.20 (default), Xen 4.17, or "
        "the protocol of the spec with every current feature (docs/mockd.md)",
    )
    restore.add_arguments(parser)
    for flag in _XENSTORED_FLAGS:
        parser.add_argument(flag, action="count", help=argparse.SUPPRESS)
    for option in _XENSTORED_VALUES:
        parser.add_argument(option, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_mockd)


async def serve(
    daemon: MockDaemon,
    updater: LiveUpdater | None = None,
    successor: Successor | None = None,
    standby: StandbySuccessor | None = None,
) -> None:
    if standby is not None:
        # The point of no return: after BYE the running daemon is gone. Inside the event
        # loop already, so that serving starts right after it.
        confirm(standby)
    # A copy: a live-update successor (same pid, same unit) must still find NOTIFY_SOCKET.
    # A standby successor stays quiet: the unit is active already and its main pid is the
    # pid holder, so systemd would refuse (and log) every notification from us.
    notifier = Notifier({} if standby is not None else dict(os.environ))
    # Catch the signals before announcing readiness, so none is missed in between.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            path = await nursery.start(daemon.run)
            if standby is not None:
                for sock, conn in standby.adopted:
                    daemon.adopt(sock, conn)
                gc.enable()  # off since the successor started loading (successor.py)
                print(
                    f"xsmig mockd: live update restored {len(daemon.engine.connections)} "
                    f"connections ({len(standby.adopted)} sockets handed over, "
                    f"{standby.nodes} nodes pre-copied)",
                    flush=True,
                )
            if successor is not None:
                for sock, conn in successor.adopted:
                    daemon.adopt(sock, conn)
                os.unlink(successor.dump)
                print(
                    f"xsmig mockd: live update restored {len(daemon.engine.connections)} "
                    f"connections ({len(successor.adopted)} sockets inherited)",
                    flush=True,
                )
            if updater is not None:
                nursery.start_soon(updater.run)
            print(f"xsmig mockd: listening on {path}", flush=True)
            notifier.ready(f"listening on {path}")
            async for signum in signals:
                name = signal.Signals(signum).name
                notifier.stopping(f"stopping on {name}")
                print(f"xsmig mockd: {name}, stopping", file=sys.stderr)
                nursery.cancel_scope.cancel()
                break


def run_mockd(args: argparse.Namespace) -> int:
    if args.rundir:
        socket_path, rundir = os.path.join(args.rundir, "socket"), args.rundir
    else:
        socket_path = args.socket or default_socket_path()
        rundir = os.path.dirname(socket_path) or "."
    successor = standby = None
    if args.live_update and STANDBY_ENV in os.environ:
        try:
            standby = load_standby(int(os.environ.pop(STANDBY_ENV)), socket_path, rundir)
        except (StandbyError, OSError) as exc:
            print(f"xsmig mockd: standby successor gives up: {exc}", file=sys.stderr)
            return 1
        daemon = standby.daemon
    elif args.live_update:
        try:
            successor = load_successor(socket_path, rundir, dict(os.environ))
            os.environ.pop(HANDOVER_ENV, None)
        except RestoreError as exc:
            # The dump stays for the operator (docs/liveupdate.md, "Recovery").
            print(f"xsmig mockd: live update restore failed: {exc}", file=sys.stderr)
            return 1
        daemon = successor.daemon
    elif args.restore:
        try:
            daemon = restore.restored_daemon(args, socket_path, rundir)
        except RestoreError as exc:
            print(f"xsmig mockd: restore failed: {exc}", file=sys.stderr)
            return 1
    else:
        daemon = MockDaemon(socket_path, rundir)
    daemon.engine.set_compat(get_compat(args.compat), fresh=not (args.live_update or args.restore))
    if successor is None and standby is None:  # a successor inherits its socket
        try:
            sockpath.prepare(socket_path)
        except OSError as exc:
            print(f"xsmig mockd: {exc}", file=sys.stderr)
            return 1
    updater = LiveUpdater(daemon, _own_arguments(), SuccessorKind(args.lu_successor))
    try:
        trio.run(serve, daemon, updater, successor, standby)
    except StandbyError as exc:
        print(f"xsmig mockd: standby successor gives up: {exc}", file=sys.stderr)
        return 1
    except (OSError, ExceptionGroup) as exc:
        error = sockpath.first_os_error(exc)
        if error is None:
            raise
        print(f"xsmig mockd: cannot serve {socket_path}: {error}", file=sys.stderr)
        return 1
    return 0


def _own_arguments() -> list[str]:
    """This command's arguments after ``mockd`` (or all of them when started as
    ``xsmig-xenstored`` or ``xsmig -U``): what a successor gets (C: its argv)."""
    argv = sys.argv[1:]
    return argv[argv.index("mockd") + 1 :] if "mockd" in argv else argv
