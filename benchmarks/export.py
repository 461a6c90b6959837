"""Exporter benchmark, wire source: ``xsmig snapshot --source wire`` of 10k / 100k-node stores.

For each daemon (the real Xen 4.17 and Xen 4.20 xenstored from shared/peer*, and the xsmig
mock) and each size: a fresh daemon, 100 introduced domains, ``N`` nodes spread over
``/local/domain/D/data/dI/nJ`` (values of 40 bytes) written with pipelined WRITEs; then one
``xsmig snapshot --source wire --output FILE --json`` run as a subprocess, timed from exec
to exit. Reported: wall time, records/s, transactions needed, image size, the CPU seconds
of the exporter (user + system of the child) and of the daemon during the snapshot (from
/proc), peak RSS of the exporter (``ru_maxrss`` of the child) and of the daemon (``VmHWM``),
and the 1-minute load average when the run ended (other work on the machine slows it).
A table at the end puts the daemons side by side per size.

A run that exceeds ``--max-seconds`` is stopped and reported as such: a read inside a
transaction costs both C daemons time in proportion to the nodes the transaction has touched
already, so one transaction over 100k nodes takes minutes there.

``--consistency``: ``watch`` (the default, and xsmig's: a watch proves that nothing changed
during a walk spread over ``--connections`` connections) and/or ``transaction`` (one
transaction on one connection).

Usage: ``.venv/bin/python benchmarks/export.py [--sizes 10000,100000]
[--daemons real-4.17,real-4.20,mock,oxenstored-4.17,oxenstored-4.20]
[--consistency watch] [--connections 8]
[--max-seconds 900]``

``--introspect 10000,100000,1000000`` (with ``--daemons none`` to skip the wire runs) measures
the mock's ``introspect`` source and the restore in a successor instead: a successor
``xsmig mockd --restore unix:PATH`` is started and waits; ``xsmig snapshot --source
introspect --to unix:PATH --json`` streams the source mock's state to it. Reported: the
snapshot's time (exec to exit), the whole handover (snapshot exec until the successor prints
its readiness line), records/s, the freeze duration from the manifest, peak RSS of the
exporter, the source mock and the successor. Stores of 1M nodes use 1,000 domains.
``--anchor 100000`` times the real 4.17 daemon's own live update of the same store (100
domains) with shared/peer/capture-image.sh, the reference the handover is compared to.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from oxenstoredlib import start_oxenstored
from peerlib import (
    REPO_ROOT,
    PeerInstall,
    RealXenstored,
    RunningDaemon,
    start_mockd,
    start_real_xenstored,
)
from wireclient import WireClient, payload

from xsmig_daemon.wire.ops import Op

DOMAINS = 100
VALUE = b"v" * 40
PIPELINE = 1000


@dataclass
class Row:
    daemon: str
    consistency: str
    nodes: int
    seconds: float | None
    records_per_s: float | None
    attempts: int | None
    image_bytes: int | None
    exporter_rss_mib: float | None
    daemon_rss_mib: float | None
    exporter_cpu_s: float | None = None
    daemon_cpu_s: float | None = None
    load: float | None = None
    note: str = ""


@contextmanager
def daemon(kind: str) -> Iterator[RunningDaemon]:
    """``real`` / ``real-4.17``: Debian's Xen 4.17; ``real-4.20``: Debian 13's Xen 4.20;
    ``oxenstored-4.17`` / ``oxenstored-4.20``: the OCaml daemon of the same packages;
    ``mock``: ``xsmig mockd``."""
    if kind.startswith("real"):
        version = kind.partition("-")[2] or "4.17"
        started: RunningDaemon = start_real_xenstored(install=PeerInstall.locate(version))
    elif kind.startswith("oxenstored"):
        started = start_oxenstored(kind.partition("-")[2] or "4.17")
    else:
        started = start_mockd()
    try:
        yield started
    finally:
        started.stop()


def populate(socket_path: Path, nodes: int, *, introduce: bool = True) -> None:
    """``nodes`` under 100 domains' homes; the domains introduced unless ``introduce`` is
    false (oxenstored cannot introduce under the shim)."""
    per_domain = max(1, nodes // DOMAINS)
    with WireClient.connect(socket_path, timeout=120) as client:
        for domid in range(1, DOMAINS + 1 if introduce else 1):
            reply = client.call(Op.INTRODUCE, str(domid), str(0x1000 + domid), str(10 + domid))
            if reply.op != Op.INTRODUCE:
                raise RuntimeError(f"INTRODUCE {domid}: {reply.payload!r}")
        paths = (
            f"/local/domain/{d}/data/d{i // 100}/n{i % 100}"
            for d in range(1, DOMAINS + 1)
            for i in range(per_domain)
        )
        pending = 0
        for path in paths:
            client.send(Op.WRITE, payload(path, value=VALUE))
            pending += 1
            if pending == PIPELINE:
                drain(client, pending)
                pending = 0
        drain(client, pending)


def drain(client: WireClient, count: int) -> None:
    for _ in range(count):
        reply = client.reply()
        if reply.op != Op.WRITE:
            raise RuntimeError(f"WRITE failed: {reply.payload!r}")


def vm_hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def snapshot_once(
    kind: str, consistency: str, nodes: int, max_seconds: float, workdir: Path, *, connections: int
) -> Row:
    with daemon(kind) as running:
        populate(running.socket_path, nodes, introduce=not kind.startswith("oxenstored"))
        out = workdir / f"{kind}-{nodes}.img"
        argv = [
            sys.executable,
            "-m",
            "xsmig_daemon",
            "snapshot",
            *("--socket", str(running.socket_path), "--source", "wire"),
            *("--consistency", consistency, "--connections", str(connections)),
            *("--output", str(out), "--json", "--timeout", "60", "--force"),
        ]
        daemon_cpu = cpu_seconds(running.pid)
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        timed_out = False
        deadline = start + max_seconds
        # wait4 rather than poll(): the child's own peak RSS comes with its exit status.
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        while pid == 0:
            if time.perf_counter() > deadline and not timed_out:
                timed_out = True
                child.terminate()
            time.sleep(0.05)
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        elapsed = time.perf_counter() - start
        returncode = os.waitstatus_to_exitcode(status)
        child.returncode = returncode
        stdout = child.stdout.read() if child.stdout else ""
        daemon_cpu = round(cpu_seconds(running.pid) - daemon_cpu, 2)
        exporter_cpu = round(usage.ru_utime + usage.ru_stime, 2)
        daemon_rss = vm_hwm_mib(running.pid)
        exporter_rss = usage.ru_maxrss / 1024
        if timed_out or returncode != 0:
            note = f"stopped after {max_seconds:g} s" if timed_out else f"exit {returncode}"
            return Row(
                *(kind, consistency, nodes, None, None, None, None, exporter_rss, daemon_rss),
                *(exporter_cpu, daemon_cpu, load_average(), note),
            )
        manifest = json.loads(stdout)
        records = sum(manifest["records"].values())
        return Row(
            kind,
            consistency,
            nodes,
            round(elapsed, 2),
            round(records / elapsed),
            manifest["attempts"],
            manifest["size"],
            round(exporter_rss, 1),
            None if daemon_rss is None else round(daemon_rss, 1),
            exporter_cpu,
            daemon_cpu,
            load_average(),
        )


@dataclass
class IntrospectRow:
    nodes: int
    domains: int
    snapshot_s: float
    handover_s: float
    records_per_s: int
    freeze_s: float
    image_bytes: int
    exporter_rss_mib: float
    daemon_rss_mib: float | None
    successor_rss_mib: float | None


def populate_domains(socket_path: Path, nodes: int, domains: int) -> None:
    """``nodes`` nodes spread over ``domains`` introduced domains (pipelined WRITEs)."""
    per_domain = max(1, nodes // domains)
    with WireClient.connect(socket_path, timeout=300) as client:
        for domid in range(1, domains + 1):
            client.send(Op.INTRODUCE, payload(str(domid), str(0x1000 + domid), str(10 + domid)))
        for _ in range(domains):
            if client.reply().op != Op.INTRODUCE:
                raise RuntimeError("INTRODUCE failed")
        pending = 0
        for d in range(1, domains + 1):
            for i in range(per_domain):
                path = f"/local/domain/{d}/data/d{i // 100}/n{i % 100}"
                client.send(Op.WRITE, payload(path, value=VALUE))
                pending += 1
                if pending == PIPELINE:
                    drain(client, pending)
                    pending = 0
        drain(client, pending)


def introspect_once(nodes: int, workdir: Path) -> IntrospectRow:
    domains = 1000 if nodes >= 1_000_000 else DOMAINS
    with daemon("mock") as source:
        populate_domains(source.socket_path, nodes, domains)
        stream = workdir / f"succ{nodes}"
        successor_dir = Path(tempfile.mkdtemp(prefix="xs", dir="/tmp"))
        successor = subprocess.Popen(
            [
                *(sys.executable, "-m", "xsmig_daemon", "mockd"),
                *("--socket", str(successor_dir / "socket")),
                *("--restore", f"unix:{stream}", "--restore-timeout", "300"),
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            while not stream.exists():
                time.sleep(0.01)
            argv = [
                *(sys.executable, "-m", "xsmig_daemon", "snapshot"),
                *("--socket", str(source.socket_path), "--source", "introspect"),
                *("--to", f"unix:{stream}", "--json", "--timeout", "300"),
                *("--freeze-deadline", "60"),
            ]
            start = time.perf_counter()
            child = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
            stdout = child.stdout.read() if child.stdout else ""
            _, status, usage = os.wait4(child.pid, 0)
            snapshot_s = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise RuntimeError(f"snapshot exited {child.returncode}")
            assert successor.stdout is not None
            for line in successor.stdout:
                if "listening on" in line:
                    break
            handover_s = time.perf_counter() - start
            manifest = json.loads(stdout)
            records = sum(manifest["records"].values())
            return IntrospectRow(
                nodes,
                domains,
                round(snapshot_s, 2),
                round(handover_s, 2),
                round(records / snapshot_s),
                round(manifest["freeze_duration_s"], 3),
                manifest["size"],
                round(usage.ru_maxrss / 1024, 1),
                vm_hwm_mib(source.pid),
                vm_hwm_mib(successor.pid),
            )
        finally:
            successor.terminate()
            successor.wait(30)
            subprocess.run(["rm", "-rf", str(successor_dir)], check=False)


def anchor_seconds(nodes: int, workdir: Path) -> float:
    """The real 4.17 xenstored's own live update (dump + exec + restore) of the same store
    (100 domains), through shared/peer/capture-image.sh: the issue's anchor."""
    with daemon("real") as running:
        populate_domains(running.socket_path, nodes, DOMAINS)
        assert isinstance(running, RealXenstored)
        start = time.perf_counter()
        running.capture_image(workdir / f"anchor{nodes}.img")
        return round(time.perf_counter() - start, 2)


def print_introspect(rows: list[IntrospectRow]) -> None:
    print(
        "\n| nodes | domains | snapshot s | snapshot+restore s | records/s | freeze s "
        "| image bytes | exporter RSS MiB | source RSS MiB | successor RSS MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join("-" if v is None else str(v) for v in asdict(r).values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--daemons", default="real-4.17,real-4.20,mock")
    parser.add_argument("--consistency", default="watch")
    parser.add_argument("--connections", type=int, default=8, help="snapshot --connections")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--introspect", default="", help="sizes for the introspect runs")
    parser.add_argument("--anchor", default="", help="sizes for the real 4.17 live update")
    args = parser.parse_args()
    rows: list[Row] = []
    for size in (int(s) for s in args.anchor.split(",") if s):
        with tempfile.TemporaryDirectory(prefix="xs", dir="/tmp") as tmp:
            seconds = anchor_seconds(size, Path(tmp))
        print(f"real 4.17 live update (dump + exec + restore), {size} nodes: {seconds} s")
    if args.introspect:
        with tempfile.TemporaryDirectory(prefix="xs", dir="/tmp") as tmp:
            found = []
            for size in (int(s) for s in args.introspect.split(",")):
                found.append(introspect_once(size, Path(tmp)))
                print(json.dumps(asdict(found[-1])), flush=True)
        print_introspect(found)
    with tempfile.TemporaryDirectory(prefix="xsbench") as tmp:
        for kind in (k for k in args.daemons.split(",") if k != "none"):
            for consistency in args.consistency.split(","):
                for size in (int(s) for s in args.sizes.split(",")):
                    try:
                        row = snapshot_once(
                            kind,
                            consistency,
                            size,
                            args.max_seconds,
                            Path(tmp),
                            connections=args.connections,
                        )
                    except Exception as exc:
                        row = Row(
                            *(kind, consistency, size, None, None, None, None, None, None),
                            note=f"failed: {exc}",
                        )
                    rows.append(row)
                    print(json.dumps(asdict(row)), flush=True)
    print_rows(rows)
    print_side_by_side(rows)


def print_rows(rows: list[Row]) -> None:
    print(
        "\n| daemon | consistency | nodes | time s | records/s | attempts | image bytes "
        "| exporter CPU s | daemon CPU s | exporter RSS MiB | daemon RSS MiB | load | note |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        cells = [
            *(r.daemon, r.consistency, r.nodes, r.seconds, r.records_per_s, r.attempts),
            *(r.image_bytes, r.exporter_cpu_s, r.daemon_cpu_s, r.exporter_rss_mib),
            *(r.daemon_rss_mib, r.load, r.note),
        ]
        print("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")


def print_side_by_side(rows: list[Row]) -> None:
    """Seconds per (consistency, size), one column per daemon."""
    daemons = list(dict.fromkeys(r.daemon for r in rows))
    if not daemons:
        return
    print("\n| consistency | nodes | " + " | ".join(f"{d} s" for d in daemons) + " |")
    print("|---|---:|" + "---:|" * len(daemons))
    for consistency, size in dict.fromkeys((r.consistency, r.nodes) for r in rows):
        cells = []
        for name in daemons:
            found = [
                r for r in rows if (r.daemon, r.consistency, r.nodes) == (name, consistency, size)
            ]
            seconds = found[0].seconds if found else None
            cells.append("-" if seconds is None else str(seconds))
        print(f"| {consistency} | {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
