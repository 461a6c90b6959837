"""Run inside ``unshare --mount``: with fresh tmpfs on /run and /var/lib, start the mock at
/run/xenstored/socket and ``xsmig serve --config config.example.toml`` exactly as shipped,
take a snapshot with ``xsmig ctl``, print what happened as JSON, stop both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = str(REPO / "config.example.toml")
XSMIG = [sys.executable, "-m", "xsmig_daemon"]


def wait_for(path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear")
        time.sleep(0.05)


def main() -> None:
    for mountpoint in ("/run", "/var/lib"):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", mountpoint], check=True)
    os.makedirs("/run/xenstored")
    mock = subprocess.Popen(
        [*XSMIG, "mockd", "--socket", "/run/xenstored/socket"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    serve = subprocess.Popen(
        [*XSMIG, "serve", "--config", EXAMPLE],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    report: dict[str, object] = {}
    try:
        wait_for("/run/xenstored/socket", mock)
        wait_for("/run/xsmig/control.sock", serve)
        ctl = subprocess.run(
            [*XSMIG, "ctl", "--json", "--config", EXAMPLE, "snapshot"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        report["ctl_returncode"] = ctl.returncode
        report["ctl_stdout"] = ctl.stdout
        report["ctl_stderr"] = ctl.stderr
        report["control_mode"] = oct(os.stat("/run/xsmig/control.sock").st_mode & 0o777)
        report["snapshots"] = sorted(os.listdir("/var/lib/xsmig/snapshots"))
    finally:
        serve.terminate()
        report["serve_stderr"] = serve.communicate(timeout=30)[1].decode()
        report["serve_returncode"] = serve.returncode
        mock.terminate()
        mock.wait(timeout=30)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
