"""Drive a real Xen 4.22 xenstored built by ``shared/peer-src`` (developer sessions only).

Thin wrappers around that folder's scripts (start.sh, capture.sh, stop.sh, restore.py), used by
``make_dumps.py`` and ``live_check.py`` next to this file. CI never imports this: it has no
4.22 daemon (the dumps these scripts captured are committed instead).

Environment: ``XEN_PEER_HEAD_CACHE`` (default /var/tmp/xen-peer-4.22) is where ``build.sh
RELEASE-4.22.0`` put the daemon; ``XSMIG_SHARED`` overrides ``../shared``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests"))

from peerlib import short_tempdir  # noqa: E402
from wireclient import WireClient  # noqa: E402

SHARED = Path(os.environ.get("XSMIG_SHARED", REPO.parent / "shared"))
PEER_SRC = SHARED / "peer-src"
CACHE = os.environ.setdefault("XEN_PEER_HEAD_CACHE", "/var/tmp/xen-peer-4.22")
XENSTORE_LS = "/usr/bin/xenstore-ls"


def built() -> bool:
    return (Path(CACHE) / "src/tools/xenstored/xenstored").exists()


def release() -> str:
    commit = (Path(CACHE) / "src.commit").read_text().strip()
    return commit


def _run(argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    if check and result.returncode:
        raise RuntimeError(f"{argv} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


class Daemon:
    """A 4.22 xenstored in ``rundir`` (socket ``rundir/socket``), stopped by pid."""

    def __init__(self, rundir: Path, pid: int) -> None:
        self.rundir = rundir
        self.pid = pid

    @property
    def socket(self) -> Path:
        return self.rundir / "socket"

    def env(self) -> dict[str, str]:
        return {**os.environ, "XENSTORED_PATH": str(self.socket)}

    def alive(self) -> bool:
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done = 0
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
        return done == 0

    def log(self) -> str:
        path = self.rundir / "xenstored.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def fatal(self) -> str:
        lines = [line for line in self.log().splitlines() if "FATAL" in line or "barf" in line]
        return lines[-1].strip() if lines else ""

    def client(self) -> WireClient:
        return WireClient.connect(self.socket)

    def ls(self) -> str:
        """``xenstore-ls -f -p /`` by Debian's client, as text."""
        return _run([XENSTORE_LS, "-f", "-p", "/"], env=self.env())

    def control(self, *args: str, check: bool = True) -> str:
        return _run([str(PEER_SRC / "ph-client.sh"), "xenstore-control", *args], self.env(), check)

    def live_update(self, *args: str) -> tuple[int, str]:
        """``xenstore-control live-update ARGS`` (4.22's own tool): exit code and output."""
        result = subprocess.run(
            [str(PEER_SRC / "ph-client.sh"), "xenstore-control", "live-update", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return result.returncode, result.stdout + result.stderr

    def capture(self, out: Path, *lu_args: str) -> bytes:
        """The daemon's own live update (capture.sh): its dump, copied before the re-exec."""
        captured = self.rundir / "captured"
        before = set(captured.iterdir()) if captured.exists() else set()
        subprocess.run(
            [str(PEER_SRC / "capture.sh"), str(self.rundir), str(out), *lu_args],
            capture_output=True,
            timeout=60,
            check=False,
        )
        new = sorted(set(captured.iterdir()) - before) if captured.exists() else []
        if not new:
            raise RuntimeError(f"4.22 wrote no dump: {self.log()[-400:]}")
        data = new[-1].read_bytes()
        out.write_bytes(data)
        return data

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """True once a request is answered (after a restore); False if the daemon died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            try:
                with WireClient.connect(self.socket, timeout=1.0) as client:
                    client.call(0xA, "0")  # GET_DOMAIN_PATH
            except (OSError, RuntimeError):
                time.sleep(0.05)
            else:
                return True
        return self.alive()

    def stop(self) -> None:
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)


def start(extra_env: dict[str, str] | None = None) -> Daemon:
    rundir = short_tempdir("x22")
    env = {**os.environ, **(extra_env or {})}
    pid = int(_run([str(PEER_SRC / "start.sh"), str(rundir)], env).split()[-1])
    return Daemon(rundir, pid)


def restore(image: bytes) -> Daemon:
    """``xenstored -U`` on ``image`` (restore.py); check ``wait_ready()`` for the outcome."""
    rundir = short_tempdir("x22r")
    image_path = rundir / "image.in"
    image_path.write_bytes(image)
    out = _run([sys.executable, str(PEER_SRC / "restore.py"), str(rundir), str(image_path)])
    return Daemon(rundir, int(out.split()[-1]))


@contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        daemon.stop()
