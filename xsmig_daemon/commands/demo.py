"""``xsmig demo``: the main job end to end against the bundled mock, for a first look.

It starts the mock xenstored in a fresh run directory, gives it a small host (three guest
domains with their usual nodes and permissions, a watching client with an open
transaction), takes a snapshot with ``xsmig snapshot`` as a separate process, then verifies
and inspects the image. Everything stays in the run directory for the user to look at.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

import trio

from ..cli import main
from ..client import Xenstore, connect
from ..image.records import Permission
from ..mockd.server import MockDaemon

NAME = "demo"
GUESTS = (1, 2, 3)
TIMEOUT = 30.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="run the bundled mock, populate it, snapshot it, verify and inspect the image",
        description=(
            "Start the mock xenstored in a run directory, populate it with three guest "
            "domains and a client holding a watch and an open transaction, snapshot it with "
            "`xsmig snapshot`, then verify and inspect the image."
        ),
    )
    parser.add_argument(
        "--rundir", metavar="DIR", help="run directory (default: a new one under /tmp)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rundir = args.rundir or tempfile.mkdtemp(prefix="xsmig-demo-", dir="/tmp")
    try:
        os.makedirs(rundir, exist_ok=True)
    except OSError as exc:
        print(f"xsmig demo: {rundir}: cannot create: {exc.strerror or exc}", file=sys.stderr)
        return 1
    image = os.path.join(rundir, "demo.img")
    try:
        code = trio.run(_snapshot_a_populated_mock, rundir, image)
    except (OSError, trio.TooSlowError) as exc:
        print(f"xsmig {NAME}: {exc}", file=sys.stderr)
        return 1
    if code != 0:
        return code
    print(f"\n$ xsmig verify --target spec {image}", flush=True)
    code = main(["verify", "--target", "spec", image])
    print(f"\n$ xsmig inspect {image}", flush=True)
    return code or main(["inspect", image])


async def _snapshot_a_populated_mock(rundir: str, image: str) -> int:
    socket_path = os.path.join(rundir, "socket")
    daemon = MockDaemon(socket_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        print(f"mock xenstored listening on {socket_path}", flush=True)
        async with connect(socket_path, timeout=TIMEOUT) as xs:
            await _populate(xs)
            # This client stays connected with its watch and open transaction while the
            # snapshot is taken, so the image holds them too (introspect source).
            tx_id = await xs.transaction_start()
            await xs.write("/demo/pending", b"not yet committed", tx_id)
            command = [
                sys.executable,
                "-m",
                "xsmig_daemon",
                "snapshot",
                "--socket",
                socket_path,
                "--output",
                image,
                "--force",
            ]
            print("$ xsmig snapshot --socket", socket_path, "--output", image, flush=True)
            with trio.fail_after(TIMEOUT):
                result = await trio.run_process(command, check=False)
            await xs.transaction_end(tx_id, commit=False)
        nursery.cancel_scope.cancel()
    return result.returncode


async def _populate(xs: Xenstore) -> None:
    await xs.write("/demo/hello", b"world")
    await xs.watch("/demo", "demo-watch")
    for domid in GUESTS:
        home = f"/local/domain/{domid}"
        await xs.write(f"{home}/name", f"guest{domid}".encode())
        await xs.write(f"{home}/domid", str(domid).encode())
        await xs.write(f"{home}/memory/target", b"524288")
        await xs.mkdir(f"{home}/device")
        await xs.set_perms(home, (Permission("n", domid), Permission("r", 0)))
        await xs.introduce(domid, 0x1000 + domid, 10 + domid)
