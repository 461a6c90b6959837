"""The long compat differential: ``xsmig mockd --compat VERSION`` against the real daemon of
that version, over many seeds of compat_session.py, each on fresh daemons.

    .venv/bin/python tests/differential/compat_sweep.py --version xen-4.20 --seeds 1-50 --steps 2000

Prints one line per seed (steps, requests, divergences) and a total; exit 1 on any
divergence (each listed, as compare_transcripts words them). Every other seed is pipelined.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from compat_session import compat_session  # noqa: E402
from peerlib import PeerInstall, start_mockd, start_real_xenstored  # noqa: E402
from random_session import pipelined  # noqa: E402
from replay import Action, Burst, compare_transcripts, run_session  # noqa: E402

VERSIONS = ("xen-4.17", "xen-4.20")


def session_for(version: str, seed: int, steps: int) -> tuple[Action, ...]:
    actions = compat_session(seed, steps, version)
    return pipelined(actions) if seed % 2 == 0 else actions


def run_seed(version: str, seed: int, steps: int, mock_args: list[str]) -> list[str]:
    """Every difference between the referee and the mock on one seed."""
    session = session_for(version, seed, steps)
    real = start_real_xenstored(install=PeerInstall.locate(version.removeprefix("xen-")))
    try:
        mock = start_mockd(args=["--compat", version, *mock_args])
        try:
            got_real = run_session(real.socket_path, session, real.guest)
            got_mock = run_session(mock.socket_path, session, mock.guest)
            problems = compare_transcripts(got_real, got_mock, collapse_repeated_events=True)
            if not real.alive():
                problems.append(f"the real {version} daemon died: {real.log()[-300:]}")
            if not mock.alive():
                problems.append(f"the mock died: {mock.log()[-300:]}")
            return problems
        finally:
            mock.stop()
    finally:
        real.stop()


def parse_seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=VERSIONS, required=True)
    parser.add_argument("--seeds", default="1-50", help="e.g. 1-50 (default)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--show", type=int, default=20, help="divergences listed per seed")
    parser.add_argument("--mock-arg", action="append", default=[], help=argparse.SUPPRESS)
    options = parser.parse_args()
    total_steps = total_div = 0
    started = time.monotonic()
    for seed in parse_seeds(options.seeds):
        session = session_for(options.version, seed, options.steps)
        requests = sum(len(a.steps) if isinstance(a, Burst) else 1 for a in session)
        problems = run_seed(options.version, seed, options.steps, options.mock_arg)
        total_steps += options.steps
        total_div += len(problems)
        mode = "pipelined" if seed % 2 == 0 else "sequential"
        print(f"seed {seed} ({mode}): {len(session)} actions, {requests} requests, "
              f"{len(problems)} divergences", flush=True)  # fmt: skip
        for line in problems[: options.show]:
            print("   ", line, flush=True)
    elapsed = time.monotonic() - started
    print(f"{options.version}: {total_steps} random steps, {total_div} divergences, "
          f"{elapsed:.0f} s")  # fmt: skip
    return 1 if total_div else 0


if __name__ == "__main__":
    sys.exit(main())
