"""Live-update blackout: mock -> mock, and the real Xen 4.17 xenstored's own, same store.

    .venv/bin/python benchmarks/live_update.py [--sizes 10000,100000,1000000] [--limit 300]

Blackout = from sending ``CONTROL live-update -s -t 60`` to the reply of the first request
(a READ) sent right after the ``OK``: dump + exec + restore + first request. The store
holds N nodes, 1,000 per domain (``/local/domain/D`` and 999 children, dom0's, readable by
D). Both daemons are started on that store from the same image in restore mode (the mock
with ``mockd -U`` on a dump with no inherited fds, the real one as tests/peerlib.py
restores images), then the live update is driven over one admin connection with the real
successor binary: the mock through a launcher that execs ``xsmig mockd``, the real daemon
with its own binary (env inherited: shim, libs). A run over ``--limit`` seconds fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from peerlib import (
    MOCKD_COMMAND,
    REPO_ROOT,
    PeerInstall,
    RestoreFds,
    RunningDaemon,
    start_mockd,
    start_restored_xenstored,
)
from wireclient import PeerError, WireClient

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import (
    DOMID_INVALID,
    ConnectionData,
    GlobalData,
    Header,
    NodeData,
    Permission,
    Record,
    RingSpec,
)
from xsmig_daemon.wire.ops import Op

PER_DOMAIN = 1000


def store_records(nodes: int) -> list[Record]:
    records: list[Record] = [
        GlobalData(10, 11),
        ConnectionData(1, RingSpec(0, DOMID_INVALID, 1)),
        NodeData("@releaseDomain", b"", (Permission("n", 0),)),
        NodeData("@introduceDomain", b"", (Permission("n", 0),)),
    ]
    root = (Permission("n", 0),)
    for path in ("/", "/local", "/local/domain"):
        records.append(NodeData(path, b"", root))
    for domid in range(1, nodes // PER_DOMAIN + 1):
        # Owned by dom0, readable by the domain: 4.17 refuses to restore more than its
        # per-domain node quota for a domain owner.
        perms = (Permission("n", 0), Permission("r", domid))
        home = f"/local/domain/{domid}"
        records.append(NodeData(home, b"", perms))
        records.extend(
            NodeData(f"{home}/k{i}", b"value-%d" % i, perms) for i in range(PER_DOMAIN - 1)
        )
    return records


def blackout(daemon: RunningDaemon, binary: str, limit: float) -> float:
    admin = WireClient.connect(daemon.socket_path, timeout=limit)
    reply = admin.call(Op.CONTROL, "live-update", "-f", binary)
    if reply.payload != b"OK\0":
        raise PeerError(f"live-update -f: {reply.payload!r}")
    started = time.monotonic()
    reply = admin.call(Op.CONTROL, "live-update", "-s", "-t", "60")
    if reply.payload != b"OK\0":
        raise PeerError(f"live-update -s: {reply.payload!r}")
    admin.call(Op.READ, "/local/domain/1/k1")
    elapsed = time.monotonic() - started
    admin.close()
    return elapsed


def run_mock(image: bytes, limit: float) -> float:
    rundir = Path(tempfile.mkdtemp(prefix="xslb", dir="/tmp"))
    (rundir / "state_dump").write_bytes(image)
    launcher = rundir / "lu-mock"
    launcher.write_text(f'#!/bin/sh\ncd {REPO_ROOT} && exec {" ".join(MOCKD_COMMAND)} "$@"\n')
    launcher.chmod(0o755)
    daemon = start_mockd(rundir, args=["-U"], ready_timeout=limit)
    try:
        return blackout(daemon, str(launcher), limit)
    finally:
        daemon.stop()


def run_real(image: bytes, install: PeerInstall, limit: float) -> float:
    daemon = start_restored_xenstored(
        image, RestoreFds.from_image(image), install=install, ready_timeout=limit
    )
    try:
        return blackout(daemon, str(install.xenstored_bin), limit)
    finally:
        daemon.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per daemon run")
    parser.add_argument("--skip-real-above", type=int, default=1_000_000)
    args = parser.parse_args()
    install = PeerInstall.locate().ensure()
    print(f"{'nodes':>9} {'image MB':>9} {'mock s':>8} {'real 4.17 s':>12} {'mock/real':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        image = b"".join(encode_image(store_records(size), Header(1, False)))
        results: dict[str, str] = {}
        values: dict[str, float] = {}
        for name in ("mock", "real"):
            if name == "real" and size > args.skip_real_above:
                results[name] = "skipped"
                continue
            try:
                if name == "mock":
                    values[name] = run_mock(image, args.limit)
                else:
                    values[name] = run_real(image, install, args.limit)
                results[name] = f"{values[name]:.3f}"
            except (PeerError, OSError) as exc:
                results[name] = "failed"
                print(f"{name} {size}: {exc}", file=sys.stderr)
        ratio = f"{values['mock'] / values['real']:.2f}" if len(values) == 2 else "-"
        print(
            f"{size:>9} {len(image) / 1e6:>9.1f} {results['mock']:>8} {results['real']:>12} "
            f"{ratio:>9}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
