"""``xsmig snapshot``: export a running xenstored (or an image) as a migration stream.

Every expected failure is one line on stderr and exit 1 (2 for usage errors); nothing is ever
left at the ``--output`` path on failure, SIGTERM or Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

import trio

from ..argtypes import int_range, positive_seconds, seconds_range
from ..cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from ..client import ClientError
from ..defaults import FREEZE_DEADLINE_MAX, FREEZE_DEADLINE_MIN
from ..export import Destination, ExportError, ExportResult, run_export
from ..export.consistency import CONSISTENCY_CHOICES
from ..export.introspect import DEFAULT_FREEZE_DEADLINE
from ..export.lanewalk import DEFAULT_LANES, MAX_LANES
from ..export.policy import (
    C_SOCKET_FD,
    SOURCE_KINDS,
    PlanSettings,
    PolicyError,
    SourceSettings,
    check_plan,
    export_plan,
    open_source,
)
from ..export.run import Progress
from ..export.sinks import UNIX_PREFIX, check_output_target
from ..image.errors import EncodeError, ImageError
from ..image.profiles import PROFILES, Profile, get_profile
from ..image.records import DOMID_FIRST_RESERVED
from ..image.targets import target_help
from ..imagefile import ImageFileError, check_not_terminal, output_name
from ..wire.introspect import FREEZE_MODES

NAME = "snapshot"
EXIT_TERMINATED = 128 + signal.SIGTERM
DEFAULT_SOCKET = "/var/run/xenstored/socket"
#: The highest domain id (DOMID_FIRST_RESERVED - 1).
MAX_DOMID = DOMID_FIRST_RESERVED - 1


def default_socket() -> str:
    """Where libxenstore looks: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket, the default."""
    if path := os.environ.get("XENSTORED_PATH"):
        return path
    if rundir := os.environ.get("XENSTORED_RUNDIR"):
        return os.path.join(rundir, "socket")
    return DEFAULT_SOCKET


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="export a running xenstored (or an image) as a migration stream",
        description=(
            "Snapshot xenstored into a migration image: a file (written atomically, with "
            "FILE.manifest.json next to it), standard output, or a successor listening on a "
            "unix socket. Exit 0 written, 1 failed, 2 usage error. See docs/export.md."
        ),
    )
    parser.add_argument(
        "--socket", default=None, help="daemon socket (default: $XENSTORED_PATH, ...)"
    )
    parser.add_argument(
        "--source",
        choices=SOURCE_KINDS,
        default="auto",
        help="where state comes from (default auto: introspect if the daemon offers it, "
        "else wire; image if --image is given)",
    )
    parser.add_argument("--image", metavar="FILE", help="image file for --source image")
    parser.add_argument(
        "--domain",
        type=int_range(0, MAX_DOMID),
        metavar="N",
        help=f"migration stream of domain N only (0..{MAX_DOMID})",
    )
    parser.add_argument(
        "--target",
        choices=tuple(PROFILES),
        default="spec",
        help=target_help() + ". Default spec: the full-fidelity image (version 2); for a "
        "real successor give its version, e.g. --target xen-4.20",
    )
    parser.add_argument(
        "--version",
        dest="stream_version",
        type=int,
        choices=(1, 2),
        help="stream version (default: an --image's own if the target loads it, else the "
        "highest the target loads: 2 for spec, 1 for xen-4.17 and xen-4.20)",
    )
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--output", metavar="FILE", help="image file, or - for standard output")
    out.add_argument("--to", metavar="unix:PATH", help="stream to a successor on a unix socket")
    parser.add_argument("--force", action="store_true", help="replace an existing FILE")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        metavar="S",
        help="max wait for any peer (10)",
    )
    parser.add_argument(
        "--freeze-deadline",
        type=seconds_range(FREEZE_DEADLINE_MIN, FREEZE_DEADLINE_MAX, low_inclusive=True),
        default=DEFAULT_FREEZE_DEADLINE,
        metavar="S",
        help="introspect: the daemon thaws by itself after S seconds "
        f"(default {DEFAULT_FREEZE_DEADLINE:g}); the export then fails",
    )
    parser.add_argument(
        "--freeze-mode",
        choices=FREEZE_MODES,
        default=FREEZE_MODES[0],
        help="introspect: snapshot (the daemon copies all but its tree and serves on while "
        "the tree is read copy-on-write: the shortest freeze), capture (it encodes its image "
        "in the freeze and runs on) or stream (frozen until everything is read: no copy)",
    )
    parser.add_argument(
        "--attempts",
        type=int_range(1, 1000),
        default=8,
        help="wire: transactions tried before giving up (1-1000, default 8)",
    )
    parser.add_argument(
        "--consistency",
        choices=CONSISTENCY_CHOICES,
        default="watch",
        help="wire: a watch proving that nothing changed during the walk, which is spread "
        "over --connections connections (default), or one transaction committed at the end "
        "(one connection; quadratic inside C xenstored, 4.17 and 4.20 alike: minutes for "
        "100k nodes)",
    )
    parser.add_argument(
        "--connections",
        type=int_range(1, MAX_LANES),
        default=DEFAULT_LANES,
        metavar="N",
        help=f"wire, --consistency watch: connections the walk spreads its requests over "
        f"(1-{MAX_LANES}, default {DEFAULT_LANES}; C xenstored serves one request per "
        "connection per round of its loop)",
    )
    parser.add_argument(
        "--dom0-evtchn",
        type=int_range(0, 0xFFFFFFFF),
        default=1,
        metavar="PORT",
        help="wire, live-update: xenstored's local event channel of dom0's ring, written into "
        "the synthesised dom0 CONNECTION_DATA (invisible over the wire; default 1)",
    )
    parser.add_argument(
        "--socket-fd",
        type=int_range(-1, 0x7FFFFFFF),
        default=None,
        metavar="FD",
        help="live-update: GLOBAL_DATA rw-socket-fd, where the loader finds its listening "
        "socket (default: the source's; for xen-4.17/xen-4.20 targets without one the "
        "target version's own number, 4 for xen-4.17, 3 for xen-4.20; "
        f"{C_SOCKET_FD} for xen-4.22, which needs it; else -1: none)",
    )
    parser.add_argument(
        "--evtchn-fd",
        type=int_range(-1, 0x7FFFFFFF),
        default=None,
        metavar="FD",
        help="live-update: GLOBAL_DATA evtchn-fd, where the loader finds its event-channel "
        "fd (default: the source's; for xen-* targets, which need one, the target version's "
        "own number, 7 for xen-4.17, 6 for xen-4.20; -1 for spec)",
    )
    parser.set_defaults(handler=run)


class UsageError(Exception):
    pass


def _plan_settings(args: argparse.Namespace, profile: Profile) -> PlanSettings:
    settings = PlanSettings(
        profile=profile,
        domain=args.domain,
        version=args.stream_version,
        socket_fd=args.socket_fd,
        evtchn_fd=args.evtchn_fd,
        dom0_evtchn=args.dom0_evtchn,
        timeout=args.timeout,
    )
    check_plan(settings)  # usage errors before anything is opened
    return settings


def _source_settings(args: argparse.Namespace) -> SourceSettings:
    return SourceSettings(
        kind=args.source,
        socket=args.socket,
        image=args.image,
        timeout=args.timeout,
        freeze_deadline=args.freeze_deadline,
        freeze_mode=args.freeze_mode,
        attempts=args.attempts,
        consistency=args.consistency,
        lanes=args.connections,
    )


def _destination(args: argparse.Namespace) -> Destination:
    if args.to is not None:
        if not args.to.startswith(UNIX_PREFIX) or len(args.to) == len(UNIX_PREFIX):
            raise UsageError(f"--to {args.to!r}: expected unix:PATH")
        return Destination(args.to[len(UNIX_PREFIX) :], unix=True)
    args.output = output_name(args.output)
    if args.output == "-" and args.json:
        raise UsageError("--json prints on stdout; it cannot be combined with --output -")
    check_not_terminal(args.output)
    check_output_target(args.output, force=args.force)
    return Destination(args.output, force=args.force)


async def _main(
    args: argparse.Namespace, dest: Destination, settings: PlanSettings
) -> ExportResult:
    source = await open_source(_source_settings(args))
    plan = export_plan(settings, source)
    progress = Progress(f"xsmig {NAME}")
    try:
        return await run_export(source, plan, dest, progress=progress if progress.enabled else None)
    finally:
        progress.done()


async def _main_until_sigterm(
    args: argparse.Namespace, dest: Destination, plan: PlanSettings
) -> ExportResult | None:
    """Run the export; SIGTERM cancels it (so the sinks clean up) and returns None."""
    result: ExportResult | None = None
    error: BaseException | None = None
    # The receiver is in place before the export task can create its temporary file: a
    # SIGTERM at any moment after that cancels the export (which removes the file) instead
    # of killing the process with the file left behind.
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def until_sigterm() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

            async def export() -> None:
                nonlocal result, error
                try:
                    result = await _main(args, dest, plan)
                except BaseException as exc:
                    if _only_cancelled(exc):
                        raise
                    # Raised after the nursery: the CLI reports the error, not a group of one.
                    error = exc
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_sigterm)
            nursery.start_soon(export)
    if error is not None:
        raise error
    return result


def run(args: argparse.Namespace) -> int:
    if args.socket is None:
        args.socket = default_socket()
    try:
        plan = _plan_settings(args, get_profile(args.target))
        dest = _destination(args)
        result = _run_trio(args, dest, plan)
    except (UsageError, PolicyError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (ExportError, ClientError, ImageFileError, EncodeError) as exc:
        return _fail(str(exc))
    except ImageError as exc:
        return _fail(f"the stream is not valid for --target {args.target}: {exc}")
    if result is None:
        where = "" if not dest.is_file else f"; nothing written at {dest.target}"
        return _fail(f"terminated by SIGTERM{where}", EXIT_TERMINATED)
    manifest = result.manifest
    if args.json:
        sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
    elif dest.target != "-":
        print(_summary_line(manifest), file=sys.stderr)
    return EXIT_OK


def _only_cancelled(exc: BaseException) -> bool:
    """True for trio's cancellation (possibly grouped), which its cancel scope must absorb."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


def _run_trio(
    args: argparse.Namespace, dest: Destination, plan: PlanSettings
) -> ExportResult | None:
    try:
        return trio.run(_main_until_sigterm, args, dest, plan)
    except BaseExceptionGroup as group:
        # Ctrl-C can surface from trio's nursery machinery inside a group; the CLI expects
        # the plain KeyboardInterrupt (exit 130).
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        raise


def _summary_line(manifest: dict[str, Any]) -> str:
    records = sum(manifest["records"].values())
    nodes = manifest["records"].get("NODE_DATA", 0)
    notes = len(manifest["fidelity_notes"])
    return (
        f"xsmig {NAME}: {manifest['image']}: {records} records ({nodes} nodes), "
        f"{manifest['size']} bytes, {manifest['source']['kind']} source, "
        f"{notes} fidelity notes (see the manifest or --json)"
    )


def _fail(message: str, code: int = EXIT_FAIL) -> int:
    print(f"xsmig {NAME}: {message}", file=sys.stderr)
    return code
