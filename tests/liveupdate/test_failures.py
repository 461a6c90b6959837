"""What the requester, the clients and the operator see when a live update cannot happen."""

from __future__ import annotations

import os
from pathlib import Path

from lusupport import control, live_update, mock_launcher, write_launcher
from peerlib import MockDaemon, start_mockd, wait_until
from wireclient import WireClient

from xsmig_daemon.wire.ops import Op


def _still_serving(mockd: MockDaemon, watcher: WireClient, pid: int) -> None:
    """Same process, old clients work, their watch still fires once."""
    assert mockd.pid == pid and mockd.alive()
    admin = mockd.connect()
    assert admin.call(Op.WRITE, "/keep/x", "1").payload == b"OK\0"
    assert watcher.event().payload == b"/keep/x\0k\0"
    assert watcher.is_silent(0.2)
    admin.close()


def _watching(mockd: MockDaemon) -> WireClient:
    watcher = mockd.connect()
    assert watcher.call(Op.WATCH, "/keep", "k").payload == b"OK\0"
    assert watcher.event().payload == b"/keep\0k\0"
    return watcher


def test_missing_and_not_executable_successor(mockd: MockDaemon, tmp_path: Path) -> None:
    watcher = _watching(mockd)
    admin = mockd.connect()
    assert control(admin, "live-update", "-f", str(tmp_path / "nope")) == "File not accessible."
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    assert control(admin, "live-update", "-f", str(plain)) == "File not executable."
    assert control(admin, "live-update", "-s") == "Not in live-update session."
    assert control(admin, "live-update", "-a") == "No live-update session active."
    # Xen's own tool shows the same texts.
    result = live_update(mockd, tmp_path / "nope")
    assert result.returncode != 0
    assert "File not accessible." in result.stdout + result.stderr
    _still_serving(mockd, watcher, mockd.pid)


def test_session_rules(mockd: MockDaemon, tmp_path: Path) -> None:
    launcher = mock_launcher(tmp_path)
    owner, other = mockd.connect(), mockd.connect()
    assert control(owner, "live-update", "-f", str(launcher)) == "OK"
    assert (
        control(other, "live-update", "-f", str(launcher)) == "live-update session already active."
    )
    assert control(other, "live-update", "-s") == "Not in live-update session."
    assert control(owner, "live-update", "-s", "-v", "3") == (
        "Migration stream version not supported."
    )
    assert owner.call(Op.CONTROL, "live-update", "-s", "-x").payload == b"EINVAL\0"
    assert control(other, "live-update", "-a") == "OK"
    assert control(owner, "live-update", "-s") == "Not in live-update session."


def test_exec_failure_keeps_serving(mockd: MockDaemon, tmp_path: Path) -> None:
    watcher = _watching(mockd)
    broken = write_launcher(tmp_path / "broken", "")
    broken.write_bytes(b"\x7fELF garbage")  # executable bit, but exec fails (ENOEXEC)
    admin = mockd.connect()
    assert control(admin, "live-update", "-f", str(broken)) == "OK"
    text = control(admin, "live-update", "-s", "-t", "5")
    assert text.startswith("Error activating new binary: cannot start "), text
    assert "Exec format error" in text
    assert not (mockd.rundir / "state_dump").exists()
    _still_serving(mockd, watcher, mockd.pid)
    # The session is over: a new one can start and succeed.
    result = live_update(mockd, mock_launcher(tmp_path))
    assert result.returncode == 0, result.stderr
    _still_serving(mockd, watcher, mockd.pid)


def test_dump_write_failure_keeps_serving(mockd: MockDaemon, tmp_path: Path) -> None:
    """The exec-in-place path (a C successor, here -v 1) writes a dump first."""
    watcher = _watching(mockd)
    (mockd.rundir / "state_dump").mkdir()  # the rename onto it fails
    admin = mockd.connect()
    assert control(admin, "live-update", "-f", str(mock_launcher(tmp_path))) == "OK"
    text = control(admin, "live-update", "-s", "-v", "1")
    assert text.startswith("Dump write error:") and "state_dump" in text, text
    assert [p.name for p in mockd.rundir.iterdir() if p.name.startswith(".state_dump")] == []
    _still_serving(mockd, watcher, mockd.pid)


def test_successor_crash_keeps_the_dump_for_recovery(tmp_path: Path) -> None:
    """Exec in place (the path to a C successor) has no way back: a successor that crashes
    leaves the dump, from which the operator restarts by hand."""
    mockd = start_mockd(args=["--lu-successor", "xen-4.17"])
    try:
        _crash_and_recover(mockd, tmp_path)
    finally:
        mockd.stop()


def _crash_and_recover(mockd: MockDaemon, tmp_path: Path) -> None:
    watcher = _watching(mockd)
    admin = mockd.connect()
    assert admin.call(Op.INTRODUCE, "3", "1", "9").payload == b"OK\0"
    guest = mockd.guest(3)
    assert admin.call(Op.WRITE, "/local/domain/3/d", "").payload == b"OK\0"
    assert admin.call(Op.SET_PERMS, "/local/domain/3/d", "n3").payload == b"OK\0"
    assert guest.call(Op.WATCH, "d", "w").payload == b"OK\0"
    assert guest.event().payload == b"d\0w\0"
    crash = write_launcher(tmp_path / "crash", "kill -SEGV $$")
    result = live_update(mockd, crash, "-F", timeout=20)
    # What the operator sees: the admin tool fails, the daemon is gone (SIGSEGV), clients
    # see EOF, and the complete state is still on disk.
    assert result.returncode != 0
    wait_until(lambda: not mockd.alive(), 10, "the crashed daemon to be gone")
    assert mockd.process.returncode == -11
    dump = mockd.rundir / "state_dump"
    assert dump.exists() and dump.stat().st_mode & 0o777 == 0o600
    # Recovery: run the successor by hand on the kept dump. Socket clients are gone (their
    # fds died with the process) and must reconnect; nodes, domains and their watches stay.
    os.unlink(mockd.socket_path)
    recovered = start_mockd(mockd.rundir, args=["-U"], install=mockd.install)
    try:
        # The log is shared with the crashed daemon, whose "listening" line is already in
        # it: readiness is the restore's own line (printed once the dump is removed).
        wait_until(lambda: "live update restored" in recovered.log(), 30, "the restore line")
        assert not dump.exists()
        fresh = recovered.connect()
        assert fresh.call(Op.IS_DOMAIN_INTRODUCED, "3").payload == b"T\0"
        guest = recovered.guest(3)
        assert fresh.call(Op.WRITE, "/local/domain/3/d/k", "1").payload == b"OK\0"
        assert guest.event().payload == b"d/k\0w\0"
        assert guest.is_silent(0.2)
    finally:
        recovered.stop()
    watcher.close()
