"""Shared pieces of the live-update tests: launchers, the admin command, watchers, snapshots."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyxs
from peerlib import REPO_ROOT, RunningDaemon, track, wait_until
from wireclient import WireClient

from xsmig_daemon.wire.ops import Op

MOCK_SUCCESSOR = (sys.executable, "-m", "xsmig_daemon", "mockd")
XENSTORE_WATCH = "/usr/bin/xenstore-watch"


def write_launcher(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def mock_launcher(directory: Path) -> Path:
    """A successor for ``live-update -f``: execs ``xsmig mockd`` with the arguments it got."""
    command = " ".join(MOCK_SUCCESSOR)
    return write_launcher(directory / "lu-mock", f'cd {REPO_ROOT} && exec {command} "$@"')


def live_update(
    daemon: RunningDaemon, binary: Path | str, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Xen 4.17's own ``xenstore-control live-update [args] BINARY``."""
    return daemon.client(
        "xenstore-control", "live-update", *args, str(binary), check=False, timeout=timeout
    )


def control(client: WireClient, *args: str) -> str:
    """A CONTROL request's reply text (NUL stripped)."""
    reply = client.call(Op.CONTROL, *args)
    return reply.payload.rstrip(b"\0").decode()


class LineWatcher:
    r"""``/usr/bin/xenstore-watch PATH`` as a child: one output line per event. It is
    ``peerlib.track``\ ed, so it is stopped after the test even if the test fails before its
    ``close()`` (a watcher whose daemon is gone spins)."""

    def __init__(self, socket_path: Path, path: str) -> None:
        env = {**os.environ, "XENSTORED_PATH": str(socket_path)}
        self.process = subprocess.Popen(
            [XENSTORE_WATCH, path],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        track(self.process)

    def line(self, timeout: float = 10.0) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "xenstore-watch printed nothing"
        return self.process.stdout.readline().strip()

    def silent(self, wait: float = 0.3) -> bool:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], wait)
        return not ready

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


def snapshot(socket_path: Path, out: Path, target: str = "spec") -> None:
    """``xsmig snapshot`` over the wire (both daemons answer it); ``xen-4.17`` leaves out
    what only current Xen can report (quotas), so that two implementations compare."""
    result = subprocess.run(
        [
            *MOCK_SUCCESSOR[:3],
            "snapshot",
            "--socket",
            str(socket_path),
            "--source",
            "wire",
            "--target",
            target,
            "--output",
            str(out),
            "--force",
        ],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"snapshot: {result.stdout}{result.stderr}"


def diff(a: Path, b: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MOCK_SUCCESSOR[:3], "diff", str(a), str(b)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cmdline(pid: int) -> Sequence[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def serving_pid(holder: int) -> int:
    """After a live update: the daemon serving for the pid holder ``holder`` (its one
    child; docs/liveupdate.md, "One service")."""
    # Right after an update the first daemon may still be on its way into the holder (the
    # successor already answers), the previous daemon still a zombie being reaped.
    wait_until(lambda: "pidholder.py" in " ".join(cmdline(holder)), 10, f"{holder} to hold pids")
    live: list[int] = []

    def one_child() -> bool:
        children = Path(f"/proc/{holder}/task/{holder}/children").read_text().split()
        live[:] = [int(pid) for pid in children if _running(int(pid))]
        return len(live) == 1 and len(children) == 1

    wait_until(one_child, 10, f"holder {holder} to have one running child")
    return live[0]


def _running(pid: int) -> bool:
    # An exiting process loses its command line before it turns into a zombie.
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except (FileNotFoundError, ProcessLookupError):
        return False


def pyxs_watching(socket_path: Path) -> tuple[pyxs.Client, Iterator[tuple[bytes, bytes]]]:
    """A pyxs client watching /p, its initial event consumed; and its event iterator."""
    py = pyxs.Client(unix_socket_path=str(socket_path))
    py.connect()
    monitor = py.monitor()
    monitor.watch(b"/p", b"py")
    events = monitor.wait()
    assert next(events) == (b"/p", b"py")
    return py, events
