"""``xsmig migrate`` and ``xsmig migrate-in``: move one guest's xenstore state (docs/migrate.md).

Exit 0 migrated; 1 failed or refused (one line on stderr saying where each end stands);
2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from ..argtypes import int_range, positive_seconds, seconds_range, unix_socket_path
from ..cli import EXIT_FAIL, EXIT_OK
from ..defaults import FREEZE_DEADLINE_MAX, FREEZE_DEADLINE_MIN
from ..export.errors import ExportError
from ..export.migrate import DEFAULT_FREEZE_DEADLINE, Outcome
from ..export.migrate_run import Options, migrate, migrate_in
from ..image.records import DOMID_FIRST_RESERVED
from .snapshot import default_socket

#: A guest's domid: 0 is dom0, DOMID_FIRST_RESERVED and above are Xen's special ids.
guest_domid = int_range(1, DOMID_FIRST_RESERVED - 1, name="a guest domain id")
GUEST_DOMIDS = f"1..{DOMID_FIRST_RESERVED - 1}"


def register(subparsers: Any) -> None:
    both: argparse.ArgumentParser = subparsers.add_parser(
        "migrate",
        help="move one guest's xenstore state from one running daemon to another",
        description=(
            "Freeze the source, move domain N's state (nodes, permissions and, between xsmig "
            "mocks, its connection with pending bytes, watches and transactions) into the "
            "destination as domain M, then release it at the source. All or nothing: a "
            "refusal leaves both daemons unchanged. Exit 0 moved, 1 failed, 2 usage error."
        ),
    )
    both.add_argument(
        "--from", dest="source", required=True, type=unix_socket_path, metavar="SOCK", help="source"
    )
    both.add_argument(
        "--to", dest="dest", required=True, type=unix_socket_path, metavar="SOCK",
        help="destination",
    )  # fmt: skip
    both.add_argument(
        "--domain", type=guest_domid, required=True, metavar="N",
        help=f"domain to move ({GUEST_DOMIDS})",
    )  # fmt: skip
    _common(both)
    both.set_defaults(handler=run_migrate)

    load: argparse.ArgumentParser = subparsers.add_parser(
        "migrate-in",
        help="load a one-domain migration image into a running daemon",
        description=(
            "Create the image's domain (as --domid M) in the running daemon at --socket, all "
            "or nothing. Exit 0 loaded, 1 refused or failed, 2 usage error."
        ),
    )
    load.add_argument("image", metavar="IMAGE", help="migration image (xsmig snapshot --domain)")
    load.add_argument(
        "--socket", default=None, type=unix_socket_path,
        help="destination socket (default: as snapshot)",
    )  # fmt: skip
    _common(load)
    load.set_defaults(handler=run_migrate_in)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--domid", type=guest_domid, metavar="M", help=f"domid at the destination ({GUEST_DOMIDS})"
    )
    parser.add_argument(
        "--lossy",
        action="store_true",
        help="C destination: drop what it cannot take (watches, pending data, transactions)",
    )
    parser.add_argument(
        "--gfn", type=int_range(0, 2**64 - 1), help="C destination: INTRODUCE gfn (0..2^64-1)"
    )
    parser.add_argument(
        "--evtchn",
        type=int_range(1, 2**32 - 1),
        help="C destination: INTRODUCE event channel (1..2^32-1)",
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=10.0, metavar="S", help="peer wait (10)"
    )
    parser.add_argument(
        "--freeze-deadline",
        type=seconds_range(FREEZE_DEADLINE_MIN, FREEZE_DEADLINE_MAX, low_inclusive=True),
        default=DEFAULT_FREEZE_DEADLINE,
        metavar="S",
        help="mock source: it thaws by itself after S seconds, the migration then fails "
        f"({FREEZE_DEADLINE_MIN:g}..{FREEZE_DEADLINE_MAX:g}, default {DEFAULT_FREEZE_DEADLINE:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _options(args: argparse.Namespace) -> Options:
    return Options(args.timeout, args.freeze_deadline, args.lossy, args.gfn, args.evtchn)


def run_migrate(args: argparse.Namespace) -> int:
    try:
        outcome = trio.run(migrate, args.source, args.dest, args.domain, args.domid, _options(args))
    except ExportError as exc:
        return _fail("migrate", str(exc))
    return _report("migrate", outcome, args.json)


def run_migrate_in(args: argparse.Namespace) -> int:
    socket = args.socket or default_socket()
    try:
        outcome = trio.run(migrate_in, args.image, socket, args.domid, _options(args))
    except ExportError as exc:
        return _fail("migrate-in", str(exc))
    return _report("migrate-in", outcome, args.json)


def _report(name: str, outcome: Outcome, as_json: bool) -> int:
    facts = {
        "source_domid": outcome.source_domid,
        "domid": outcome.domid,
        "image_bytes": outcome.image_bytes,
        "records": outcome.records,
        "downtime_s": _round(outcome.downtime),
        "source_frozen_s": _round(outcome.source_frozen),
        "notes": outcome.notes,
    }
    if as_json:
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return EXIT_OK
    downtime = "" if outcome.downtime is None else f", downtime {outcome.downtime * 1000:.1f} ms"
    print(
        f"xsmig {name}: domain {outcome.source_domid} -> {outcome.domid}: "
        f"{outcome.image_bytes} bytes{downtime}",
        file=sys.stderr,
    )
    for note in outcome.notes:
        print(f"xsmig {name}: note: {note}", file=sys.stderr)
    return EXIT_OK


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _fail(name: str, message: str, code: int = EXIT_FAIL) -> int:
    print(f"xsmig {name}: {message}", file=sys.stderr)
    return code
