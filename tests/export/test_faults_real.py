"""Faults while exporting from the real 4.17 xenstored: each ends with one line on stderr, an
exit status != 0, nothing at the target path (no temporary file either), and -- unless it is
the daemon that died -- the daemon still serving."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peerlib import REPO_ROOT, RealXenstored, short_tempdir, wait_until
from snaplib import XENSTORE_WRITE, leftovers, snapshot, snapshot_command, tool, write_many

pytestmark = pytest.mark.peer

XENSTORE_READ = "/usr/bin/xenstore-read"


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A fresh tmpfs mounted at ``path`` (we run as root), always unmounted again."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def still_serving(xs: RealXenstored) -> None:
    tool(xs.socket_path, XENSTORE_WRITE, "/after/fault", "ok")
    assert tool(xs.socket_path, XENSTORE_READ, "/after/fault").strip() == "ok"


def big_tree(xs: RealXenstored, nodes: int) -> None:
    write_many(xs.socket_path, {f"/big/d{i // 100}/n{i % 100}": b"v" * 60 for i in range(nodes)})


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def start_snapshot(xs: RealXenstored, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        snapshot_command(xs.socket_path, *args),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background of a shell without job control inherits an
        # ignored SIGINT, and Python keeps it ignored: the SIGINT case needs the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )


def while_alive(
    exporter: subprocess.Popen[str], condition: Callable[[], bool]
) -> Callable[[], bool]:
    """``condition``, failing the test with the exporter's output once it has exited."""

    def check() -> bool:
        assert exporter.poll() is None, exporter.communicate()
        return condition()

    return check


def wait_for_temp_file(directory: Path, exporter: subprocess.Popen[str]) -> None:
    opened = while_alive(
        exporter, lambda: any(p.name.endswith(".tmp") for p in directory.iterdir())
    )
    wait_until(opened, 20, "the exporter's temporary file")


@contextlib.contextmanager
def held_walk(xs: RealXenstored, out_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """An exporter (wire source: no probe) whose walk cannot finish: the daemon is stopped
    (SIGSTOP) before the exporter starts, so it waits for its first reply with its temporary
    file open. No timing is involved; the daemon is continued (SIGCONT) at the end."""
    xs.process.send_signal(signal.SIGSTOP)
    exporter = start_snapshot(xs, "--source", "wire", "--output", str(out_dir / "x.img"))
    try:
        wait_for_temp_file(out_dir, exporter)
        wait_for_pending_connection(xs.socket_path, exporter)
        yield exporter
    finally:
        if exporter.poll() is None:
            exporter.kill()
            exporter.communicate()
        if xs.process.poll() is None:
            xs.process.send_signal(signal.SIGCONT)


def pending_connections(socket_path: Path) -> int:
    """Connections waiting in the accept queue of the listener at ``socket_path`` (ss Recv-Q)."""
    out = subprocess.run(
        ["ss", "-xlH", "src", str(socket_path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2]) if len(out) > 2 else 0


def wait_for_pending_connection(socket_path: Path, exporter: subprocess.Popen[str]) -> None:
    """The exporter has connected to the stopped daemon: its connection waits in the backlog."""
    connected = while_alive(exporter, lambda: pending_connections(socket_path) >= 1)
    wait_until(connected, 20, "the exporter's connection")


def test_daemon_killed_mid_walk(real_xenstored: RealXenstored, tmp_path: Path) -> None:
    big_tree(real_xenstored, 500)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with held_walk(real_xenstored, out_dir) as exporter:
        real_xenstored.process.send_signal(signal.SIGKILL)
        _out, err = exporter.communicate(timeout=30)
    assert exporter.returncode == 1
    line = one_line(err)
    assert line.startswith("xsmig snapshot: wire source: ")
    assert "closed the connection" in line or "reset" in line
    assert leftovers(out_dir) == []


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM, "terminated by SIGTERM; nothing written at"),
        (signal.SIGINT, 130, "interrupted"),
    ],
)
def test_signal_mid_walk_leaves_nothing(
    real_xenstored: RealXenstored, tmp_path: Path, signum: int, status: int, message: str
) -> None:
    big_tree(real_xenstored, 500)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with held_walk(real_xenstored, out_dir) as exporter:
        exporter.send_signal(signum)
        signalled = time.monotonic()
        _out, err = exporter.communicate(timeout=30)
        # Well under --timeout (10 s): a cancelled walk must not wait for the stopped
        # daemon's replies (to the abort of its transaction either).
        assert time.monotonic() - signalled < 5, err
    assert exporter.returncode == status, err
    assert message in one_line(err)
    assert leftovers(out_dir) == []
    still_serving(real_xenstored)


def test_target_directory_unwritable(real_xenstored: RealXenstored, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as directory:
        run = snapshot(real_xenstored.socket_path, "--output", str(directory / "x.img"))
        assert run.returncode == 1
        assert "Read-only file system" in one_line(run.stderr)
        assert leftovers(directory) == []
    still_serving(real_xenstored)


def test_disk_full(real_xenstored: RealXenstored, tmp_path: Path) -> None:
    big_tree(real_xenstored, 2000)  # about 200 KB of image
    with tmpfs(tmp_path / "small", "size=64k") as directory:
        run = snapshot(real_xenstored.socket_path, "--output", str(directory / "x.img"))
        assert run.returncode == 1
        assert "No space left on device" in one_line(run.stderr)
        assert leftovers(directory) == []
    still_serving(real_xenstored)


def test_successor_closing_mid_stream(real_xenstored: RealXenstored) -> None:
    big_tree(real_xenstored, 5000)  # more than the socket buffers hold
    listen_dir = short_tempdir()
    path = listen_dir / "succ"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(20)
        exporter = start_snapshot(real_xenstored, "--to", f"unix:{path}")
        try:
            conn, _ = listener.accept()
            conn.settimeout(20)
            assert conn.recv(4096).startswith(b"xenstore")
            conn.close()
            _out, err = exporter.communicate(timeout=30)
        finally:
            if exporter.poll() is None:
                exporter.kill()
                exporter.communicate()
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        listen_dir.rmdir()
    assert exporter.returncode == 1
    assert "successor closed the connection after" in one_line(err)
    still_serving(real_xenstored)


def test_existing_output_needs_force(real_xenstored: RealXenstored, tmp_path: Path) -> None:
    out = tmp_path / "x.img"
    out.write_bytes(b"old")
    run = snapshot(real_xenstored.socket_path, "--output", str(out))
    assert run.returncode == 1
    assert "exists (use --force to replace it)" in one_line(run.stderr)
    assert out.read_bytes() == b"old"
    run = snapshot(real_xenstored.socket_path, "--output", str(out), "--force")
    assert run.returncode == 0, run.stderr
    assert out.read_bytes().startswith(b"xenstore")


def test_no_daemon_is_one_line(tmp_path: Path) -> None:
    run = snapshot(tmp_path / "nobody", "--output", str(tmp_path / "x.img"))
    assert run.returncode == 1
    assert "cannot connect" in one_line(run.stderr)
    assert leftovers(tmp_path) == []
