"""Request rates of the mock xenstored and of the real Xen 4.17 xenstored, same client, one run.

    .venv/bin/python benchmarks/daemon.py [--seconds 1.5] [--rounds 2] [--domains 100]

Both daemons are started fresh and run side by side: the real one from ../shared/peer under
its shim, the mock as ``python -m xsmig_daemon mockd``. The same blocking unix-socket client
(tests/peerlib.py's wire client, the project's framing) measures them. Each rate line runs
``--seconds`` per daemon, alternating real and mock, best of ``--rounds``. The populate line
introduces ``--domains`` domains and writes ``--nodes`` nodes under each home, pipelined 32
deep; it stops after ``--populate-limit`` seconds and then extrapolates (marked). Ratio =
mock / real (for the populate time: real time / mock time), so >= 0.5 meets issue 3's target
on every line.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from peerlib import (
    MOCKD_COMMAND,
    start_mockd,
    start_real_xenstored,
)
from wireclient import PeerError, WireClient, payload

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

PIPELINE_DEPTH = 32
DIRECTORY_CHILDREN = 600


@dataclass
class Result:
    name: str
    unit: str
    value: float
    partial: bool = False


def _expect(client: WireClient, op: Op, count: int) -> None:
    for _ in range(count):
        reply = client.receive()
        if reply.op != op:
            raise PeerError(f"expected {op.name}, got {reply.describe()}: {reply.payload[:40]!r}")


def _rate(seconds: float, batch: Callable[[], int]) -> float:
    """Run ``batch`` (returns the requests it completed) for ``seconds``; requests/s."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while (now := time.perf_counter()) < deadline:
        done += batch()
    return done / (now - start)


def read_round_trips(client: WireClient, seconds: float) -> float:
    request = encode_message(Op.READ, 1, 0, payload("/bench/value"))

    def batch() -> int:
        for _ in range(100):
            client.send_raw(request)
            _expect(client, Op.READ, 1)
        return 100

    return _rate(seconds, batch)


def read_pipelined(client: WireClient, seconds: float) -> float:
    burst = encode_message(Op.READ, 1, 0, payload("/bench/value")) * PIPELINE_DEPTH

    def batch() -> int:
        for _ in range(10):
            client.send_raw(burst)
            _expect(client, Op.READ, PIPELINE_DEPTH)
        return 10 * PIPELINE_DEPTH

    return _rate(seconds, batch)


def write_round_trips(client: WireClient, seconds: float) -> float:
    counter = 0

    def batch() -> int:
        nonlocal counter
        for _ in range(100):
            counter += 1
            body = payload(f"/bench/w{counter % 500}", value=b"value-%d" % counter)
            client.send_raw(encode_message(Op.WRITE, 1, 0, body))
            _expect(client, Op.WRITE, 1)
        return 100

    return _rate(seconds, batch)


def directory_round_trips(client: WireClient, seconds: float) -> float:
    request = encode_message(Op.DIRECTORY, 1, 0, payload("/bench/dir"))

    def batch() -> int:
        for _ in range(20):
            client.send_raw(request)
            _expect(client, Op.DIRECTORY, 1)
        return 20

    return _rate(seconds, batch)


def populate(client: WireClient, domains: int, nodes: int, limit: float) -> Result:
    """INTRODUCE each domain, then ``nodes`` WRITEs under its /local/domain/N, pipelined 32
    deep; returns the seconds taken."""
    start = time.perf_counter()
    written = 0
    partial = False
    for domid in range(1, domains + 1):
        introduce = payload(str(domid), str(0x1000 + domid), str(100 + domid))
        client.send_raw(encode_message(Op.INTRODUCE, 1, 0, introduce))
        _expect(client, Op.INTRODUCE, 1)
        requests = [
            encode_message(
                Op.WRITE,
                1,
                0,
                payload(f"/local/domain/{domid}/data/n{i % 10}/leaf{i}", value=b"v%d" % i),
            )
            for i in range(nodes)
        ]
        for first in range(0, nodes, PIPELINE_DEPTH):
            chunk = requests[first : first + PIPELINE_DEPTH]
            client.send_raw(b"".join(chunk))
            _expect(client, Op.WRITE, len(chunk))
            written += len(chunk)
        if time.perf_counter() - start > limit:
            partial = domid < domains
            break
    elapsed = time.perf_counter() - start
    if partial:
        elapsed *= domains * nodes / written
    return Result(f"populate {domains} x {nodes} nodes", "s", elapsed, partial)


def prepare(client: WireClient) -> None:
    client.send_raw(encode_message(Op.WRITE, 1, 0, payload("/bench/value", value=b"x" * 64)))
    _expect(client, Op.WRITE, 1)
    burst = b"".join(
        encode_message(Op.WRITE, 1, 0, payload(f"/bench/dir/c{i:03d}", value=b""))
        for i in range(DIRECTORY_CHILDREN)
    )
    client.send_raw(burst)
    _expect(client, Op.WRITE, DIRECTORY_CHILDREN)


RATE_LINES: tuple[tuple[str, Callable[[WireClient, float], float]], ...] = (
    ("READ round trip", read_round_trips),
    (f"READ pipelined {PIPELINE_DEPTH} deep", read_pipelined),
    ("WRITE round trip", write_round_trips),
    (f"DIRECTORY of {DIRECTORY_CHILDREN} children", directory_round_trips),
)


def measure(
    real: WireClient, mock: WireClient, args: argparse.Namespace
) -> tuple[list[Result], list[Result]]:
    """Rate lines alternate real, mock, real, mock (best of ``--rounds``) so that load from
    other processes on the machine hits both; populate runs last, once each."""
    real_results: list[Result] = []
    mock_results: list[Result] = []
    for name, line in RATE_LINES:
        best = {"real": 0.0, "mock": 0.0}
        for _ in range(args.rounds):
            best["real"] = max(best["real"], line(real, args.seconds))
            best["mock"] = max(best["mock"], line(mock, args.seconds))
        real_results.append(Result(name, "req/s", best["real"]))
        mock_results.append(Result(name, "req/s", best["mock"]))
    real_results.append(populate(real, args.domains, args.nodes, args.populate_limit))
    mock_results.append(populate(mock, args.domains, args.nodes, args.populate_limit))
    return real_results, mock_results


def report(real: list[Result], mock: list[Result]) -> str:
    lines = [
        f"{'':36} {'real 4.17':>12} {'mock':>12}   mock/real",
    ]
    for ours, theirs in zip(real, mock, strict=True):
        # Times (unit s) are better when smaller, rates when larger.
        ratio = ours.value / theirs.value if ours.unit == "s" else theirs.value / ours.value
        mark = " (extrapolated, stopped early)" if ours.partial or theirs.partial else ""
        lines.append(
            f"{ours.name:30} {ours.unit:>5} {ours.value:12.2f} {theirs.value:12.2f}"
            f"   {ratio:6.2f}x{mark}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement (1.5)")
    parser.add_argument("--rounds", type=int, default=2, help="best of N per rate line (2)")
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1000, help="per domain (1000)")
    parser.add_argument(
        "--populate-limit", type=float, default=35.0, help="seconds per daemon (35)"
    )
    parser.add_argument(
        "--mockd-command",
        default=shlex.join(MOCKD_COMMAND),
        help="how to start the mock (--socket PATH is appended)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    real_daemon = start_real_xenstored()
    try:
        mock_daemon = start_mockd(command=shlex.split(args.mockd_command))
        try:
            with real_daemon.connect(30) as real_client, mock_daemon.connect(30) as mock_client:
                prepare(real_client)
                prepare(mock_client)
                real, mock = measure(real_client, mock_client, args)
        finally:
            mock_daemon.stop()
    finally:
        real_daemon.stop()
    print(report(real, mock))
    print(f"(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
