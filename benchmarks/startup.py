"""Start-up time of the offline commands: N runs of the installed ``xsmig`` script each.

    .venv/bin/python benchmarks/startup.py [--runs 10] [--no-bytecode]

Prints, per command, the best and median wall-clock time of a whole process (start, parse,
run on a small image, exit) and the best and median CPU time (user + sys) of that process.
The target is 100 ms wall on a quiet machine; on a loaded machine the CPU time is the fairer
number (waiting for a core is not start-up work).

An installed package runs from compiled bytecode (pip and Debian compile it at install time;
an editable install writes it on the first run unless PYTHONDONTWRITEBYTECODE is set). So by
default xsmig_daemon is compiled first, as an install does. ``--no-bytecode`` measures the
other case: every xsmig module compiled from source on every run (the standard library keeps
its bytecode either way).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "xsmig_daemon"
XSMIG = Path(sys.executable).with_name("xsmig")
IMAGE = REPO / "tests" / "data" / "basic.img"


def commands(out: Path) -> dict[str, list[str]]:
    image = str(IMAGE)
    return {
        "--help": ["--help"],
        "inspect --help": ["inspect", "--help"],
        "inspect": ["inspect", image],
        "verify": ["verify", image],
        "diff": ["diff", image, image],
        "convert": ["convert", image, str(out), "--force"],
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run of ``xsmig ARGV``."""
    start = time.perf_counter()
    child = subprocess.Popen([str(XSMIG), *argv], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"xsmig {' '.join(argv)} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def drop_bytecode() -> None:
    for cache in PACKAGE.rglob("__pycache__"):
        shutil.rmtree(cache)


@contextmanager
def bytecode(enabled: bool) -> Iterator[dict[str, str]]:
    """The child environment, with xsmig_daemon's bytecode present or absent throughout."""
    env = dict(os.environ)
    if enabled:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if not compileall.compile_dir(PACKAGE, quiet=1):
            raise SystemExit("compileall failed")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        drop_bytecode()
    yield env


def ms(values: list[float], pick: str) -> str:
    value = min(values) if pick == "best" else statistics.median(values)
    return f"{value * 1000:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile xsmig_daemon from source every run"
    )
    args = parser.parse_args()
    mode = "compiled from source every run" if args.no_bytecode else "from bytecode"
    print(f"{args.runs} runs each, xsmig_daemon {mode}; load {os.getloadavg()[0]:.2f}")
    print(f"{'':<16} {'wall best':>10} {'median':>7}   {'cpu best':>9} {'median':>7}  (ms)")
    with tempfile.TemporaryDirectory() as tmp, bytecode(not args.no_bytecode) as env:
        for name, argv in commands(Path(tmp) / "out.img").items():
            runs = [timed(argv, env) for _ in range(args.runs)]
            wall, cpu = [w for w, _ in runs], [c for _, c in runs]
            print(
                f"{name:<16} {ms(wall, 'best'):>10} {ms(wall, 'median'):>7}   "
                f"{ms(cpu, 'best'):>9} {ms(cpu, 'median'):>7}"
            )


if __name__ == "__main__":
    main()
