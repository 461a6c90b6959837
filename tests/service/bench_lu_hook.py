"""What the lu-hook adds to a real 4.17 live update (not a test; run by hand from tests/):

    ../.venv/bin/python -m service.bench_lu_hook 10000

Fills a fresh real xenstored with N nodes (pipelined writes), then times
``xenstore-control live-update -f BINARY`` three times each with the real xenstored as
BINARY and with the installed lu-hook wrapper, and prints the medians.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from peerlib import PeerInstall, RealXenstored, start_real_xenstored
from wireclient import payload

from xsmig_daemon.wire.ops import Op

from .test_lu_hook_real import install_hook

BATCH = 500
RUNS = 3


def fill(xs: RealXenstored, count: int) -> None:
    with xs.connect() as client:
        for start in range(0, count, BATCH):
            stop = min(count, start + BATCH)
            for i in range(start, stop):
                client.send(Op.WRITE, payload(f"/bench/d{i // 100}/n{i}", value=b"value-%d" % i))
            for _ in range(start, stop):
                client.reply()


def timed_update(xs: RealXenstored, binary: Path) -> float:
    start = time.monotonic()
    xs.client("xenstore-control", "live-update", "-f", str(binary), timeout=600)
    return time.monotonic() - start


def main(count: int) -> None:
    install = PeerInstall.locate().ensure()
    base = Path(tempfile.mkdtemp(prefix="xs", dir="/tmp"))
    xs = start_real_xenstored(install=install)
    try:
        _, wrapper = install_hook(base, install)
        fill(xs, count)
        plain = statistics.median(timed_update(xs, install.xenstored_bin) for _ in range(RUNS))
        hooked = statistics.median(timed_update(xs, wrapper) for _ in range(RUNS))
        dump = max((base / "snaps").glob("lu-*.img")).stat().st_size
        print(
            f"{count} nodes, dump {dump} bytes: live update {plain:.3f} s direct, "
            f"{hooked:.3f} s through lu-hook (+{hooked - plain:.3f} s), median of {RUNS}"
        )
    finally:
        xs.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
