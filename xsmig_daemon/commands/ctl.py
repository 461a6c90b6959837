"""``xsmig ctl [--socket PATH] COMMAND``: talk to a running ``xsmig serve``.

One JSON request line, one JSON response line (docs/service.md). Prints the result for a
person, or as JSON with ``--json``; an error reply or an unreachable service is one line on
stderr and exit 1. From ``--config`` it reads only ``control.socket``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from ..argtypes import int_range, positive_seconds
from ..cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from ..image.profiles import PROFILES
from ..service.config import OPTIONS, ConfigError, load_option
from ..service.control_protocol import MAX_LINE, encode_request
from .ctl_format import format_result

NAME = "ctl"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="send a command to the running xsmig service",
        description="Send one request to 'xsmig serve' over its control socket.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH", help="control socket (default: from --config)")
    where.add_argument(
        "--config", metavar="FILE", help="read control.socket from this configuration"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="S",
        help="seconds to wait for the answer (default: the service's own deadline for the command)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as one JSON document (for scripts)"
    )
    commands = parser.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status", help="what the service is doing, last snapshot, counters"
    )
    reload = commands.add_parser("reload", help="re-read the configuration file (like SIGHUP)")
    snap = commands.add_parser("snapshot", help="take a snapshot now")
    snap.add_argument(
        "--output",
        metavar="FILE",
        help="image path (default: manual-TIME.img in the "
        "snapshot directory); the manifest goes to FILE.manifest.json",
    )
    snap.add_argument("--force", action="store_true", help="replace an existing FILE")
    snap.add_argument("--target", choices=tuple(PROFILES), help="loader profile to write for")
    lu = commands.add_parser(
        "live-update", help="live-update xenstored through the lu-hook (checked dump, copy kept)"
    )
    lu.add_argument("--force", action="store_true", help="xenstore-control -F")
    lu.add_argument(
        "--lu-timeout", type=int_range(1, 3600), metavar="S", help="xenstore-control -t (1-3600)"
    )
    for command in (status, reload, snap, lu):
        # Also accepted after the command; SUPPRESS keeps a --json given before it.
        command.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    parser.set_defaults(handler=run)


def _socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    if args.config:
        return str(load_option(args.config, "control", "socket"))
    return str(OPTIONS["control"]["socket"].default)


def _request(args: argparse.Namespace) -> bytes:
    command = args.ctl_command
    deadline = args.timeout
    if command == "snapshot":
        output = os.path.abspath(args.output) if args.output else None
        return encode_request(
            command,
            1,
            deadline=deadline,
            output=output,
            force=args.force or None,
            target=args.target,
        )
    if command == "live-update":
        return encode_request(
            command, 1, deadline=deadline, force=args.force or None, timeout=args.lu_timeout
        )
    return encode_request(command, 1, deadline=deadline)


def run(args: argparse.Namespace) -> int:
    try:
        path = _socket_path(args)
    except ConfigError as exc:
        print(f"xsmig {NAME}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # The service enforces the real deadline; this one only stops us waiting forever.
    wait = (args.timeout + 5) if args.timeout else 24 * 3600.0
    try:
        reply = exchange(path, _request(args), wait)
    except OSError as exc:
        print(f"xsmig {NAME}: {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAIL
    except ValueError as exc:
        print(f"xsmig {NAME}: {path}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if not reply.get("ok"):
        print(f"xsmig {NAME}: {reply.get('error', 'request failed')}", file=sys.stderr)
        return EXIT_FAIL
    result = reply.get("result", {})
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_result(args.ctl_command, result))
    return EXIT_OK


def exchange(path: str, request: bytes, timeout: float) -> dict[str, Any]:
    """Send one request line and read one response line (blocking, bounded by ``timeout``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(request)
        data = bytearray()
        while b"\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("the service closed the connection without answering")
            data += chunk
            if len(data) > MAX_LINE * 16:
                raise ValueError("response too long")
    document = json.loads(data[: data.index(b"\n")])
    if isinstance(document, dict):
        return document
    return {"ok": False, "error": "the service's response is not a JSON object"}
