"""lu-hook between two xsmig mocks: the mock's own live update (the same admin interface as
C xenstored) passes through the hook; the mock's successor is a standby (no dump), which
the hook starts unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from peerlib import PeerInstall, run_client, wait_until
from wireclient import WireClient

from xsmig_daemon.wire.ops import Op

from .test_lu_hook_real import install_hook

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mock_in_rundir(short_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``xsmig mockd`` finding its socket (and writing its dump) via $XENSTORED_RUNDIR."""
    rundir = short_dir / "run"
    rundir.mkdir()
    env = {**os.environ, "XENSTORED_RUNDIR": str(rundir)}
    env.pop("XENSTORED_PATH", None)
    with open(rundir / "mockd.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "xsmig_daemon", "mockd"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def listening() -> bool:
            assert process.poll() is None, (rundir / "mockd.log").read_text()
            return "listening" in (rundir / "mockd.log").read_text()

        wait_until(listening, 10, "the mock's listening line")
        yield process, rundir
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_mock_live_update_passes_through_the_hook(
    mock_in_rundir: tuple[subprocess.Popen[bytes], Path],
    peer_install: PeerInstall,
    short_dir: Path,
) -> None:
    process, rundir = mock_in_rundir
    socket_path = rundir / "socket"
    successor = short_dir / "mockd-successor"
    successor.write_text(f'#!/bin/sh\nexec {sys.executable} -m xsmig_daemon mockd "$@"\n')
    successor.chmod(0o755)
    _, wrapper = install_hook(short_dir, peer_install, profile="spec", successor=str(successor))
    run_client(peer_install, socket_path, "xenstore-write", "/m/a", "one")
    with WireClient.connect(socket_path) as watcher:
        assert watcher.call(Op.WATCH, "/m/a", "tok").payload == b"OK\0"
        assert watcher.event().op == Op.WATCH_EVENT
        result = run_client(
            peer_install,
            socket_path,
            "xenstore-control",
            "live-update",
            "-f",
            str(wrapper),
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, (result.stderr, (rundir / "mockd.log").read_text())
        assert process.poll() is None
        assert watcher.call(Op.READ, "/m/a").payload == b"one"
        run_client(peer_install, socket_path, "xenstore-write", "/m/a", "two")
        assert watcher.event().strings[:2] == [b"/m/a", b"tok"]
    # The mock hands over to a standby successor (docs/liveupdate.md): no dump is written, so
    # the hook has nothing to check and passes the successor through; the successor
    # validates the stream it is sent, and the running daemon would keep serving otherwise.
    assert not (short_dir / "snaps").exists()
    log = (rundir / "mockd.log").read_text()
    assert "<6>lu-hook: standby successor, starting" in log
    assert "live update restored" in log
