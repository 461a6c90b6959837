"""The mock never harms another daemon: it refuses a socket where something answers, never
unlinks a socket it did not create, and creates only its own directory."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from peerlib import MockDaemon, RealXenstored, start_mockd

REPO = Path(__file__).resolve().parents[2]


def run_mockd(*args: str) -> subprocess.CompletedProcess[str]:
    """A mock that is expected to refuse at once (it would otherwise run until the timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "mockd", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("xsmig mockd: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def test_refuses_the_socket_of_the_real_xenstored(real_xenstored: RealXenstored) -> None:
    path = str(real_xenstored.socket_path)
    before = os.stat(path).st_ino
    assert_refused(run_mockd("--socket", path), path, "another daemon is listening")
    assert os.stat(path).st_ino == before
    assert real_xenstored.client("xenstore-write", "/still", "here").returncode == 0


def test_refuses_the_socket_of_another_mock(mockd: MockDaemon) -> None:
    path = str(mockd.socket_path)
    assert_refused(run_mockd("--socket", path), "another daemon is listening")
    assert mockd.client("xenstore-read", "/", check=False).returncode == 0
    assert mockd.process.poll() is None


def test_takes_over_a_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # bound, never listened: nobody answers there
    process = subprocess.Popen(
        [sys.executable, "-m", "xsmig_daemon", "mockd", "--socket", str(path)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the mock did not say it was listening"
        assert process.stdout.readline() == f"xsmig mockd: listening on {path}\n"
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(str(path))
        probe.close()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert not path.exists()  # its own socket, removed at exit


@pytest.mark.parametrize("kind", ["file", "directory", "fifo"])
def test_refuses_a_path_that_is_not_a_socket(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "socket"
    if kind == "file":
        target.write_text("precious")
    elif kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    assert_refused(run_mockd("--socket", str(target)), str(target), "not a socket")
    if kind == "file":
        assert target.read_text() == "precious"


def test_creates_no_directory_beyond_its_own(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "socket"
    assert_refused(run_mockd("--socket", str(path)), "does not exist")
    assert list(tmp_path.iterdir()) == []
    assert_refused(run_mockd("--rundir", "/proc/xsmig-nonexistent"), "/proc/xsmig-nonexistent")


def test_a_socket_path_over_107_bytes_is_one_line(tmp_path: Path) -> None:
    path = str(tmp_path / ("x" * 120))
    assert_refused(run_mockd("--socket", path), "at most 107 bytes")
    assert not os.path.lexists(path)


def test_never_unlinks_a_socket_another_daemon_put_there(tmp_path: Path) -> None:
    daemon = start_mockd(tmp_path)
    path = str(daemon.socket_path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)  # another daemon takes the path over (as the old mock would have)
        other.bind(path)
        other.listen(1)
        assert daemon.stop() == 0
        assert os.path.exists(path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(path)  # still the other daemon's
        probe.close()
    finally:
        other.close()
        daemon.stop()
