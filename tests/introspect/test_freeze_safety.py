"""A dom0 is never left with a frozen xenstored: the mock thaws when the exporter is killed
mid-freeze, and at the freeze deadline when the exporter is too slow (which then fails).
Both with ``--freeze-mode stream``, where the freeze lasts while the exporter reads (a
``capture`` freeze ends inside the daemon's own request, before the exporter gets control).

The exporter is made to stall inside the freeze by a successor that accepts the stream
socket's connection in the kernel (listen backlog) but does not read: the exporter blocks
writing while the daemon is frozen.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from introlib import XSMIG, mock
from peerlib import REPO_ROOT, MockDaemon, short_tempdir, wait_until
from wireclient import WireClient, payload, unread_bytes, write

from xsmig_daemon.wire.ops import Op

NODES = 30_000
HEADER_BYTES = 16


@pytest.fixture(scope="module")
def big_mock() -> Iterator[MockDaemon]:
    with mock() as daemon:
        with WireClient.connect(daemon.socket_path, timeout=60) as client:
            for start in range(0, NODES, 1000):
                for index in range(start, start + 1000):
                    client.send(Op.WRITE, payload(f"/big/{index // 100}/n{index}", value=b"v" * 8))
                for _ in range(1000):
                    assert client.reply().op == Op.WRITE
        yield daemon


@pytest.fixture
def stalled_successor() -> Iterator[tuple[Path, socket.socket]]:
    directory = short_tempdir()
    path = directory / "succ"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        yield path, listener
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


def start_exporter(daemon: MockDaemon, successor: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *XSMIG,
            "snapshot",
            "--socket",
            str(daemon.socket_path),
            "--source",
            "introspect",
            "--to",
            f"unix:{successor}",
            "--freeze-mode",
            "stream",
            *args,
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_frozen(listener: socket.socket, exporter: subprocess.Popen[str]) -> socket.socket:
    """Accept the exporter's stream connection and wait until image records arrive on it
    (unread): they come from the frozen state, so the daemon is frozen, and stays so while
    nobody reads them (the exporter blocks writing). Returns the successor's end."""
    listener.settimeout(30)
    conn, _ = listener.accept()
    # The header (16 bytes) may be written before the freeze; a record only after it.
    wait_until(
        lambda: exporter.poll() is None and unread_bytes(conn.fileno()) > HEADER_BYTES,
        30,
        "image records from the frozen daemon",
    )
    return conn


def assert_serving(daemon: MockDaemon) -> None:
    with daemon.connect(timeout=5) as client:
        write(client, "/after", b"thawed")
        assert client.call(Op.READ, "/after").payload == b"thawed"


def test_sigkill_of_the_exporter_mid_freeze_thaws_at_once(
    big_mock: MockDaemon, stalled_successor: tuple[Path, socket.socket]
) -> None:
    path, listener = stalled_successor
    exporter = start_exporter(big_mock, path, "--freeze-deadline", "30", "--timeout", "60")
    try:
        with big_mock.connect() as client:
            successor = wait_until_frozen(listener, exporter)
            client.send(Op.READ, payload("/big/0/n0"))
            # Held while frozen (this can only fail if the freeze is not one).
            assert client.is_silent(0.5), "a frozen daemon answered"
            exporter.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            # Answered long before the 30 s deadline: the exporter's socket closing thawed it.
            assert client.reply(timeout=5).payload == b"v" * 8
            assert time.monotonic() - killed < 5
            successor.close()
    finally:
        exporter.kill()
        exporter.communicate()
    assert_serving(big_mock)


def test_an_exporter_past_the_deadline_fails_and_the_daemon_thaws_by_itself(
    big_mock: MockDaemon, stalled_successor: tuple[Path, socket.socket]
) -> None:
    path, listener = stalled_successor
    exporter = start_exporter(big_mock, path, "--freeze-deadline", "1", "--timeout", "30")
    try:
        with big_mock.connect() as client:
            conn = wait_until_frozen(listener, exporter)
            sent = time.monotonic()
            client.send(Op.READ, payload("/big/0/n0"))
            assert client.reply(timeout=5).payload == b"v" * 8
            waited = time.monotonic() - sent
            assert waited < 3, f"answered {waited:.2f} s after the freeze was seen"
        assert_serving(big_mock)
        # Let the stalled exporter go on: it learns that its freeze was ended for it.
        with conn:
            conn.settimeout(30)
            while conn.recv(1 << 20):
                pass
        _, stderr = exporter.communicate(timeout=30)
    finally:
        exporter.kill()
        exporter.communicate()
    assert exporter.returncode == 1
    assert stderr.count("\n") == 1, stderr
    assert "ended the freeze at its 1 s deadline" in stderr
    assert_serving(big_mock)
