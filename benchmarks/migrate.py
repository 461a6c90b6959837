"""Guest downtime of ``xsmig migrate`` between two mocks, for a domain with N nodes.

    .venv/bin/python benchmarks/migrate.py [--nodes 10000] [--runs 5]

Two ``xsmig mockd`` processes; the source is restored from an image holding domain 7 (its
ring, a watch, N nodes it owns under /local/domain/7, 40-byte values) plus 10 other domains
of 100 nodes each, 100 nodes per directory. Both have the default per-domain quotas
raised to take N nodes. Each run moves domain 7 to the other daemon (A -> B, then B -> A,
...) with the library the command uses, in this process. Printed per run, in milliseconds:

* ``precopy``: the domain's nodes copied to the destination and planned there while the
  guest still runs (``migrate precopy``, ``import stage``); not part of the downtime;
* ``downtime``: from sending ``migrate export`` (the source freezes) to the destination's
  ``OK`` to the import commit (it serves the domain from then on);
* ``served``: from the same instant to the reply of a READ sent by a guest that attaches to
  the destination's endpoint right after the commit (what the guest sees);
* ``frozen``: how long the source was frozen in all (until its release reply);
* ``export`` / ``import``: the two halves of ``downtime``; ``final_kB`` the frozen stream
  (the connection part only, when no node changed since the pre-copy);
* ``cpu``: CPU time the two daemons and this driver used during the downtime (from
  /proc, 10 ms grain): what the downtime would be on an idle machine, the work being
  sequential.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from peerlib import MockDaemon, start_mockd
from wireclient import WireClient

from xsmig_daemon.client import connect
from xsmig_daemon.export.migrate import (
    MockDestination,
    MockSource,
    Outcome,
    run_migration,
)
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import (
    DOMID_INVALID,
    ConnectionData,
    DomainData,
    GlobalData,
    Header,
    NodeData,
    Permission,
    Record,
    RingSpec,
    WatchData,
)
from xsmig_daemon.store.quotas import default_quotas
from xsmig_daemon.wire.ops import Op

DOMID = 7
OTHERS = 10
OTHER_NODES = 100
#: Nodes per directory (the node-size quota bounds a child list, as in C).
PER_DIRECTORY = 100


def quotas(nodes: int) -> tuple[tuple[str, int], ...]:
    values = default_quotas()
    values.update(nodes=nodes + 100, memory=nodes * 200 + 1_000_000)
    return tuple(values.items())


def store(nodes: int) -> list[Record]:
    root = (Permission("n", 0),)
    records: list[Record] = [GlobalData(-1, -1)]
    domids = [DOMID, *range(100, 100 + OTHERS)]
    records += [
        ConnectionData(i, RingSpec(d, DOMID_INVALID, i), unique_id=i)
        for i, d in enumerate(domids, 1)
    ]
    records.append(WatchData(1, "data", "tok"))
    records += [NodeData(p, b"", root) for p in ("/", "/local", "/local/domain")]
    for domid in domids:
        count = nodes if domid == DOMID else OTHER_NODES
        perms = (Permission("n", domid),)
        home = f"/local/domain/{domid}"
        records.append(NodeData(home, b"", perms))
        records.append(NodeData(f"{home}/data", b"", perms))
        left = count - 2
        for group in range(0, left, PER_DIRECTORY):
            records.append(NodeData(f"{home}/data/d{group:05d}", b"", perms))
            records += [
                NodeData(f"{home}/data/d{group:05d}/k{i:05d}", b"%040d" % i, perms)
                for i in range(group, min(left, group + PER_DIRECTORY - 1))
            ]
    records += [
        NodeData("@releaseDomain", b"", root),
        NodeData("@introduceDomain", b"", root),
    ]
    records += [DomainData(d, 14, quotas(nodes)) for d in domids]
    return records


def guest_read(daemon: MockDaemon) -> None:
    with WireClient.connect(daemon.rundir / "domain" / str(DOMID)) as guest:
        reply = guest.call(Op.READ, "data/d00000/k00000")
        assert reply.op == Op.READ, reply.describe()


def cpu_seconds(daemon: MockDaemon) -> float:
    """User + system CPU time of a daemon process so far (clock ticks, 10 ms grain)."""
    fields = Path(f"/proc/{daemon.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_run(
    source: MockDaemon, dest: MockDaemon
) -> tuple[Outcome, float, float, float, float]:
    served: list[float] = []
    marks: dict[str, float] = {}
    cpu: dict[str, float] = {}

    async def checkpoint(phase: str) -> None:
        marks[phase] = trio.current_time()
        cpu[phase] = cpu_seconds(source) + cpu_seconds(dest) + time.process_time()
        if phase == "imported":
            await trio.to_thread.run_sync(guest_read, dest)
            served.append(trio.current_time())

    async with (
        connect(str(source.socket_path), timeout=30) as src,
        connect(str(dest.socket_path), timeout=30) as dst,
    ):
        started = trio.current_time()
        outcome = await run_migration(
            MockSource(src, str(source.socket_path), 30),
            MockDestination(dst, str(dest.socket_path)),
            DOMID,
            None,
            checkpoint=checkpoint,
        )
    # run_migration starts its clock (the freeze) just after the pre-copy; so does ours.
    started = marks["precopied"]
    window_cpu = cpu["imported"] - cpu["precopied"]
    return (
        outcome,
        served[0] - started,
        marks["exported"] - started,
        started - marks["prepared"],
        window_cpu,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xsmig-bench-") as tmp:
        image = Path(tmp) / "store.img"
        image.write_bytes(b"".join(encode_image(store(args.nodes), Header(2, False))))
        a = start_mockd(args=("--restore", str(image)), ready_timeout=120)
        b = start_mockd(ready_timeout=60)
        try:
            for daemon in (a, b):
                with daemon.connect() as admin:
                    for name, value in quotas(args.nodes):
                        if not name.startswith("soft-"):
                            reply = admin.call(Op.CONTROL, "quota", "set", name, str(value))
                            assert reply.payload == b"OK\0", reply.describe()
            rows = []
            ends = (a, b)
            print(f"domain {DOMID}: {args.nodes} nodes, other domains: {OTHERS} x {OTHER_NODES}")
            print(
                "run  precopy_ms  downtime_ms  served_ms  frozen_ms  export_ms  import_ms  "
                "final_kB  cpu_ms"
            )
            for run in range(args.runs):
                source, dest = ends[run % 2], ends[(run + 1) % 2]
                outcome, served, exported, precopy, cpu = trio.run(one_run, source, dest)
                assert outcome.downtime is not None and outcome.source_frozen is not None
                row = (outcome.downtime, served, outcome.source_frozen, cpu)
                rows.append(row)
                print(
                    f"{run + 1:3d}  {precopy * 1000:10.1f}  "
                    f"{outcome.downtime * 1000:11.1f}  {served * 1000:9.1f}  "
                    f"{outcome.source_frozen * 1000:9.1f}  {exported * 1000:9.1f}  "
                    f"{(outcome.downtime - exported) * 1000:9.1f}  "
                    f"{outcome.image_bytes / 1000:8.1f}  {cpu * 1000:6.0f}"
                )
            print(
                f"median downtime {statistics.median(r[0] for r in rows) * 1000:.1f} ms, "
                f"served {statistics.median(r[1] for r in rows) * 1000:.1f} ms, "
                f"frozen {statistics.median(r[2] for r in rows) * 1000:.1f} ms, "
                f"CPU in the downtime {statistics.median(r[3] for r in rows) * 1000:.0f} ms"
            )
        finally:
            a.stop()
            b.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
