"""The live-update soak, longer than CI's: ``tests/liveupdate/test_soak.py`` with more updates.

    .venv/bin/python benchmarks/live_update_soak.py --updates 1000

Runs the soak test (8 clients writing, watching and committing; every third successor broken
in one of five ways) with ``XSMIG_SOAK_UPDATES`` set, and prints its summary: updates, time,
and per client the writes, lost writes, lost and duplicated events. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOAK_TEST = "tests/liveupdate/test_soak.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000, help="live updates (default 1000)")
    args = parser.parse_args()
    if args.updates < 3:
        parser.error("--updates must be at least 3 (every third one is broken)")
    env = {**os.environ, "XSMIG_SOAK_UPDATES": str(args.updates)}
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", SOAK_TEST]
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    summary = [
        line
        for line in result.stdout.splitlines()
        if "live updates (" in line
        or line.startswith("[{")
        or " passed" in line
        or " failed" in line
    ]
    print("\n".join(summary) if summary else result.stdout[-3000:])
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-2000:], file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
