"""Start-up time of the offline commands: best of N runs of the installed ``xsmig`` script.

    .venv/bin/python benchmarks/startup.py [--runs 10]

Prints, per command, the best and median wall-clock time of a whole process (start, parse,
run on a small image, exit). The target is 100 ms; on a loaded machine look at the best run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([str(XSMIG), *argv], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in commands(Path(tmp) / "out.img").items():
            times = [timed(argv) for _ in range(args.runs)]
            print(
                f"{name:<16} best {min(times) * 1000:6.1f} ms   "
                f"median {statistics.median(times) * 1000:6.1f} ms"
            )


if __name__ == "__main__":
    main()
