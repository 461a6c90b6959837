"""``xsmig ctl [--socket PATH] COMMAND``: talk to a running ``xsmig serve``.

One JSON request line, one JSON response line (docs/service.md). Prints the result as JSON
on stdout; an error reply or an unreachable service is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from ..cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from ..image.profiles import PROFILES
from ..service.config import ConfigError, default_config, load_config
from ..service.control_protocol import MAX_LINE, encode_request

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
        type=float,
        metavar="S",
        help="seconds to wait for the answer (default: the service's own deadline for the command)",
    )
    commands = parser.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)
    commands.add_parser("status", help="what the service is doing, last snapshot, counters")
    commands.add_parser("reload", help="re-read the configuration file (like SIGHUP)")
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
    lu.add_argument("--lu-timeout", type=int, metavar="S", help="xenstore-control -t")
    parser.set_defaults(handler=run)


def _socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return str(args.socket)
    config = load_config(args.config) if args.config else default_config()
    return config.control.socket


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
    if args.timeout is not None and args.timeout <= 0:
        print(f"xsmig {NAME}: --timeout: must be positive", file=sys.stderr)
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
    sys.stdout.write(json.dumps(reply.get("result", {}), indent=2, sort_keys=True) + "\n")
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
