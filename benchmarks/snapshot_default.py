"""Does the shipped default freeze deadline snapshot a big mock? Time and peak memory.

    .venv/bin/python benchmarks/snapshot_default.py [--sizes 1000000] [--freeze-mode MODE]

For each size a mock is started with ``--restore`` on a store of N nodes (1,000 per domain,
as benchmarks/live_update.py builds it). Then, with every option at its default (so the
source is ``auto`` -> introspect, the freeze deadline ``defaults.FREEZE_DEADLINE``):

- ``xsmig snapshot --socket S --output FILE --json``: wall and CPU time, peak RSS of that
  process, how long the mock was frozen (the manifest's own measure);
- the service's path: ``xsmig serve`` with a configuration that sets only the paths, and
  ``xsmig ctl snapshot``: wall time of the request, the service's peak RSS.

``--freeze-mode`` changes that one option for both (default: the shipped one). The mock's
own peak RSS is printed too. Exit 1 if any snapshot failed. Peak RSS of the
``xsmig snapshot`` process is its ``wait4`` maximum (this process stays small, so the fork
does not inflate it); the service's is its VmHWM.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_update import store_records
from peerlib import REPO_ROOT, start_mockd, wait_until

from xsmig_daemon.defaults import FREEZE_DEADLINE
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import Header
from xsmig_daemon.wire.introspect import FREEZE_MODES

XSMIG = [sys.executable, "-m", "xsmig_daemon"]


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def from_manifest(image: Path) -> dict[str, Any]:
    manifest = json.loads(Path(f"{image}.manifest.json").read_text())
    return {"frozen_s": manifest["freeze_duration_s"], "source": manifest["source"]["kind"]}


def cli_snapshot(socket: Path, output: Path, mode: str | None) -> dict[str, Any]:
    """One ``xsmig snapshot`` with default options, measured from outside."""
    argv = [*XSMIG, "snapshot", "--socket", str(socket), "--output", str(output)]
    argv += [] if mode is None else ["--freeze-mode", mode]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        result: dict[str, Any] = {
            "exit": os.waitstatus_to_exitcode(status),
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mib": usage.ru_maxrss / 1024,
            "stderr": err.read().strip(),
        }
    child.returncode = result["exit"]
    if result["exit"] == 0:
        result.update(from_manifest(output))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds for any one step")
    parser.add_argument("--freeze-mode", choices=FREEZE_MODES, help="default: the shipped one")
    parser.add_argument("--write-store", nargs=2, metavar=("IMAGE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_store:
        write_store(Path(args.write_store[0]), int(args.write_store[1]))
        return 0
    mode = args.freeze_mode or f"{FREEZE_MODES[0]} (shipped)"
    print(
        f"freeze deadline {FREEZE_DEADLINE:g} s (shipped), freeze mode {mode}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    failed = False
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="xssd", dir="/tmp") as tmp:
            failed |= not one_size(size, Path(tmp), args.limit, args.freeze_mode)
    return 1 if failed else 0


def write_store(image: Path, size: int) -> None:
    with open(image, "wb") as out:
        for chunk in encode_image(store_records(size), Header(1, False)):
            out.write(chunk)


def one_size(size: int, tmp: Path, limit: float, mode: str | None) -> bool:
    image = tmp / "store.img"
    # In a child: a child's peak RSS (wait4) counts this process's size when it was forked,
    # so this one must stay small (a million records in a list are not).
    build = [sys.executable, __file__, "--write-store", str(image), str(size)]
    subprocess.run(build, check=True, timeout=limit)
    mock = start_mockd(tmp / "run", args=["--restore", str(image)], ready_timeout=limit)
    try:
        cli = cli_snapshot(mock.socket_path, tmp / "cli.img", mode)
        print(f"{size:>9} nodes  xsmig snapshot: {describe(cli)}", flush=True)
        service = service_snapshot(mock.socket_path, tmp, limit, mode)
        print(f"{size:>9} nodes  xsmig ctl snapshot: {describe(service)}", flush=True)
        print(f"{size:>9} nodes  mock peak RSS {peak_rss_mib(mock.process.pid):.0f} MiB")
    finally:
        mock.stop()
    return bool(cli["exit"] == 0 and service["exit"] == 0)


def describe(result: dict[str, Any]) -> str:
    if result["exit"] != 0:
        return f"FAILED (exit {result['exit']}): {result['stderr']}"
    parts = [f"{result['wall_s']:.1f} s"]
    for key, label in (("cpu_s", "cpu"), ("frozen_s", "frozen"), ("rss_mib", "peak RSS")):
        if result.get(key) is not None:
            unit = "MiB" if key == "rss_mib" else "s"
            parts.append(f"{label} {result[key]:.{0 if unit == 'MiB' else 3}f} {unit}")
    if result.get("source"):
        parts.append(f"source {result['source']}")
    return ", ".join(parts)


def service_snapshot(socket: Path, tmp: Path, limit: float, mode: str | None) -> dict[str, Any]:
    """``xsmig serve`` with only the paths set, one ``xsmig ctl snapshot``."""
    config = tmp / "config.toml"
    freeze_mode = "" if mode is None else f'freeze_mode = "{mode}"\n'
    config.write_text(
        f'[xenstored]\nsocket = "{socket}"\n{freeze_mode}'
        f'[snapshots]\ndirectory = "{tmp / "snaps"}"\ninterval = 0\n'
        f'[control]\nsocket = "{tmp / "ctl.sock"}"\n'
    )
    serve = subprocess.Popen(
        [*XSMIG, "serve", "--config", str(config)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctl = [*XSMIG, "ctl", "--config", str(config), "--json"]
    try:
        wait_until(
            lambda: (
                subprocess.run([*ctl, "status"], capture_output=True, check=False).returncode == 0
            ),
            30,
            "xsmig serve to answer",
        )
        started = time.perf_counter()
        done = subprocess.run(
            [*ctl, "snapshot"], capture_output=True, text=True, timeout=limit, check=False
        )
        wall = time.perf_counter() - started
        result: dict[str, Any] = {
            "exit": done.returncode,
            "wall_s": wall,
            "stderr": done.stderr.strip() or done.stdout.strip(),
            "rss_mib": peak_rss_mib(serve.pid),
        }
        if done.returncode == 0:
            result.update(from_manifest(Path(json.loads(done.stdout)["image"])))
        return result
    finally:
        serve.terminate()
        serve.communicate(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
