"""Live-update blackout seen by a client: the mock, Xen 4.17's and Xen 4.20's own, same store.

    .venv/bin/python benchmarks/live_update.py [--sizes 10000,100000,1000000] [--updates 5]

Blackout = the longest gap between two consecutive replies of a client that sends READs in a
loop across the update (one connection, kept open), from just before ``CONTROL live-update
-s -t LIMIT`` until just after its ``OK``; the median over ``--updates`` consecutive updates of
the same daemon is printed. The store holds N nodes, 1,000 per domain (``/local/domain/D``
and 999 children, dom0's, readable by D). Every daemon starts on that store from the same
image in restore mode (the mock with ``mockd -U`` on a dump, the real ones as their test
harnesses restore images), then updates itself: the mock to ``xsmig`` (standby successor),
4.17 and 4.20 to their own binary. ``mem x`` is the mock's peak resident memory of all its
processes during an update over one daemon's just before it. A run over ``--limit`` seconds
fails. On stderr, per daemon: each update's longest gap and when it ended relative to the
OK (negative: while the mock was still serving during its pre-copy), the median gap at the
handover itself (ending within 0.25 s of the OK), and the longest gap of the same READ loop
over as long a time without any update (what the machine's load alone does).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import itertools

from peerlib import (
    PeerInstall,
    RestoreFds,
    shared_dir,
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


class ReadLoop:
    """A client sending READs back to back in a thread; remembers when each reply came."""

    def __init__(self, socket_path: Path, limit: float) -> None:
        self.client = WireClient.connect(socket_path, timeout=limit)
        self.times: list[float] = []
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self.client.call(Op.READ, "/local/domain/1/k1")
                self.times.append(time.monotonic())
        except (PeerError, OSError) as exc:
            self.error = exc

    def longest_gap(self, start: float, end: float) -> tuple[float, float]:
        """The longest gap between replies from ``start`` to ``end``, and when it ended."""
        times = [t for t in self.times if t > start]
        before = [t for t in self.times if t <= start]
        series = before[-1:] + [t for t in times if t <= end]
        return max(((b - a, b) for a, b in itertools.pairwise(series)), default=(0.0, end))

    def gap_around(self, moment: float, window: float) -> float:
        """The longest gap that ended within ``window`` seconds of ``moment``."""
        times = self.times
        return max(
            (b - a for a, b in itertools.pairwise(times) if abs(b - moment) <= window),
            default=0.0,
        )

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.close()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (children are listed per thread: trio starts a
    successor from a worker thread)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                pids.extend(process_tree(int(child)))
    return pids


def rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class MemorySampler:
    """Peak resident memory of a daemon's process tree while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, sum(rss(p) for p in process_tree(self.pid)))

    def close(self) -> int:
        self.stop.set()
        self.thread.join(5)
        return self.peak


@dataclass
class Result:
    blackouts: list[float]
    memory_ratio: float | None = None
    #: When each longest gap ended, relative to the OK (negative: during the pre-copy).
    gap_ends: list[float] = field(default_factory=list)
    #: The longest gap without an update, over as long as an update took.
    idle_gap: float = 0.0
    #: The longest gap ending near the OK: the handover itself (the freeze, for the mock).
    handover_gaps: list[float] = field(default_factory=list)
    #: Per update: (resident bytes of the serving daemon before it, peak of all processes).
    memory: list[tuple[int, int]] = field(default_factory=list)
    #: The mock's own log, per update: (pre-copy seconds, frozen milliseconds).
    mock_times: list[tuple[float, float]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.blackouts)


def updates(daemon_pid: int, socket_path: Path, binary: str, count: int, limit: float) -> Result:
    """``count`` updates, each bounded by ``-t limit``."""
    lu_timeout = round(limit)
    loop = ReadLoop(socket_path, limit)
    admin = WireClient.connect(socket_path, timeout=limit)
    result = Result([])
    ratios = []
    durations: list[float] = []
    try:
        for _ in range(count):
            # The serving daemon is the largest process of the tree (a pid holder is small).
            one_daemon = max(rss(p) for p in process_tree(daemon_pid))
            reply = admin.call(Op.CONTROL, "live-update", "-f", binary)
            if reply.payload != b"OK\0":
                raise PeerError(f"live-update -f: {reply.payload!r}")
            sampler = MemorySampler(daemon_pid)
            started = time.monotonic()
            reply = admin.call(Op.CONTROL, "live-update", "-s", "-t", str(lu_timeout))
            if reply.payload != b"OK\0":
                raise PeerError(f"live-update -s: {reply.payload!r}")
            ended = time.monotonic()
            durations.append(ended - started)
            admin.call(Op.READ, "/local/domain/1/k1")
            peak = sampler.close()
            ratios.append(peak / one_daemon)
            result.memory.append((one_daemon, peak))
            # The loop must have answered after the update before the gap is measured.
            count_after = len([t for t in loop.times if t > ended])
            deadline = time.monotonic() + limit
            while count_after == 0 and loop.error is None and time.monotonic() < deadline:
                time.sleep(0.01)
                count_after = len([t for t in loop.times if t > ended])
            if loop.error is not None:
                raise PeerError(f"the READ loop broke: {loop.error}")
            gap, gap_end = loop.longest_gap(started, time.monotonic())
            result.blackouts.append(gap)
            result.gap_ends.append(gap_end - ended)
            result.handover_gaps.append(loop.gap_around(ended, HANDOVER_WINDOW))
        # The same READ loop with no update, as long as an update took: what the machine's
        # load alone does to the longest gap.
        quiet = time.monotonic()
        time.sleep(statistics.median(durations))
        result.idle_gap = loop.longest_gap(quiet, time.monotonic())[0]
    finally:
        loop.close()
        admin.close()
    result.memory_ratio = max(ratios)
    return result


def run_mock(image: bytes, count: int, limit: float) -> Result:
    rundir = Path(tempfile.mkdtemp(prefix="xslb", dir="/tmp"))
    (rundir / "state_dump").write_bytes(image)
    daemon = start_mockd(rundir, args=["-U"], ready_timeout=limit)
    try:
        xsmig = Path(sys.executable).parent / "xsmig"
        result = updates(daemon.pid, daemon.socket_path, str(xsmig), count, limit)
        result.mock_times = [
            (float(precopy), float(frozen)) for frozen, precopy in MOCK_LOG.findall(daemon.log())
        ]
        return result
    finally:
        daemon.stop()
        shutil.rmtree(rundir, ignore_errors=True)


def run_real(image: bytes, install: PeerInstall, count: int, limit: float) -> Result:
    daemon = start_restored_xenstored(
        image, RestoreFds.from_image(image), install=install, ready_timeout=limit
    )
    try:
        binary = str(install.xenstored_bin)
        result = updates(daemon.pid, daemon.socket_path, binary, count, limit)
        result.memory_ratio = None  # C replaces itself: one process, nothing to compare
        return result
    finally:
        daemon.stop()


def run_real_420(image: bytes, count: int, limit: float) -> Result:
    peer = shared_dir() / "peer-4.20"
    spec = importlib.util.spec_from_file_location("restore420", peer / "restore.py")
    assert spec is not None and spec.loader is not None
    restore420 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(restore420)
    rundir = Path(tempfile.mkdtemp(prefix="xslc", dir="/tmp"))
    cache = os.environ.get("XEN_PEER_NEXT_CACHE", "/var/tmp/xen-peer-next")
    libs = f"{cache}/root/usr/lib/x86_64-linux-gnu"
    launcher = rundir / "xenstored-4.20"
    launcher.write_text(
        f"#!/bin/sh\nexec {libs}/ld-linux-x86-64.so.2 --library-path {libs} "
        f'--preload {cache}/xsshim.so {cache}/root/usr/lib/xen-4.20/bin/xenstored "$@"\n'
    )
    launcher.chmod(0o755)
    pid, peers = restore420.spawn_from_image(str(rundir), image)
    for peer_end in peers.values():
        peer_end.close()
    try:
        socket_path = rundir / "socket"
        deadline = time.monotonic() + limit
        while (rundir / "state_dump").exists():
            if time.monotonic() > deadline:
                raise PeerError("4.20 did not restore in time")
            time.sleep(0.05)
        result = updates(pid, socket_path, str(launcher), count, limit)
        result.memory_ratio = None
        return result
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        shutil.rmtree(rundir, ignore_errors=True)


DAEMONS = ("mock", "real 4.17", "real 4.20")
#: The line a mock daemon logs when its standby successor took over (mockd/standby.py).
MOCK_LOG = re.compile(r"after ([\d.]+) ms frozen here \(pre-copy of \d+ nodes: ([\d.]+) s")
#: A gap ending this close to the OK (seconds) belongs to the handover itself.
HANDOVER_WINDOW = 0.25


def mock_details(result: Result) -> str:
    precopy = statistics.median(p for p, _ in result.mock_times)
    frozen = statistics.median(f for _, f in result.mock_times)
    memory = " ".join(f"{one / 1e6:.0f}->{peak / 1e6:.0f}" for one, peak in result.memory)
    return (
        f"pre-copy median {precopy:.1f} s, frozen median {frozen:.1f} ms (the old daemon's "
        f"log); RSS MB serving daemon -> peak of all its processes: {memory}; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--updates", type=int, default=5, help="updates per daemon (median)")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per wait")
    parser.add_argument("--skip-417-above", type=int, default=100_000)
    parser.add_argument(
        "--daemons", default=",".join(DAEMONS), help=f"which of {', '.join(DAEMONS)} to run"
    )
    args = parser.parse_args()
    install = PeerInstall.locate().ensure()
    print(
        f"{'nodes':>9} {'image MB':>9} {'mock ms':>8} {'mem x':>6} "
        f"{'4.17 ms':>8} {'4.20 ms':>8} {'mock/4.20':>9}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        image = b"".join(encode_image(store_records(size), Header(1, False)))
        shown: dict[str, str] = {}
        values: dict[str, Result] = {}
        for name in DAEMONS:
            if name not in args.daemons.split(","):
                shown[name] = "-"
                continue
            if name == "real 4.17" and size > args.skip_417_above:
                shown[name] = "skipped"
                continue
            try:
                if name == "mock":
                    values[name] = run_mock(image, args.updates, args.limit)
                elif name == "real 4.17":
                    values[name] = run_real(image, install, args.updates, args.limit)
                else:
                    values[name] = run_real_420(image, args.updates, args.limit)
                shown[name] = f"{values[name].median * 1000:.1f}"
                runs = " ".join(
                    f"{b * 1000:.1f}@{e * 1000:+.0f}"
                    for b, e in zip(values[name].blackouts, values[name].gap_ends, strict=True)
                )
                handover = statistics.median(values[name].handover_gaps)
                print(
                    f"  {name} {size}: blackout ms @ its end - OK ms: {runs}; median gap at "
                    f"the handover {handover * 1000:.1f} ms; longest gap without update "
                    f"{values[name].idle_gap * 1000:.1f} ms",
                    file=sys.stderr,
                )
                if values[name].mock_times:
                    print(f"  {name} {size}: {mock_details(values[name])}", file=sys.stderr)
            except (PeerError, OSError) as exc:
                shown[name] = "failed"
                print(f"{name} {size}: {exc}", file=sys.stderr)
        mock = values.get("mock")
        memory = f"{mock.memory_ratio:.2f}" if mock and mock.memory_ratio else "-"
        real = values.get("real 4.20")
        ratio = f"{mock.median / real.median:.2f}" if mock and real else "-"
        print(
            f"{size:>9} {len(image) / 1e6:>9.1f} {shown['mock']:>8} {memory:>6} "
            f"{shown['real 4.17']:>8} {shown['real 4.20']:>8} {ratio:>9}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
