"""The successor named as with C: ``-f $(command -v xsmig)`` and ``-f xsmig-xenstored``."""

from __future__ import annotations

import sys
from pathlib import Path

from lusupport import cmdline, live_update, serving_pid
from peerlib import MockDaemon, running_mockd

from xsmig_daemon.wire.ops import Op

BIN = Path(sys.executable).parent


def _update_keeps_clients(mockd: MockDaemon, binary: Path) -> None:
    admin = mockd.connect()
    watcher = mockd.connect()
    assert watcher.call(Op.WATCH, "/n", "t").payload == b"OK\0"
    assert watcher.event().payload == b"/n\0t\0"
    pid = mockd.pid
    for round_ in range(2):
        result = live_update(mockd, binary)
        assert result.returncode == 0, result.stdout + result.stderr
        assert mockd.pid == pid and mockd.alive()
        successor = cmdline(serving_pid(pid))
        assert successor[1:2] == [str(binary)] and successor[-1] == "-U", successor
        assert admin.call(Op.WRITE, f"/n/{round_}", "v").payload == b"OK\0"
        assert watcher.event().payload == b"/n/%d\0t\0" % round_
    assert "Traceback" not in mockd.log()
    admin.close()
    watcher.close()


def test_xsmig_itself_as_the_successor(mockd: MockDaemon) -> None:
    # C passes the daemon's own options plus -U: `xsmig --socket PATH -U`.
    _update_keeps_clients(mockd, BIN / "xsmig")


def test_xsmig_xenstored_with_c_options() -> None:
    command = (str(BIN / "xsmig-xenstored"), "-N", "-F", "/dev/null")
    with running_mockd(command=command) as mockd:
        _update_keeps_clients(mockd, BIN / "xsmig-xenstored")
        argv = cmdline(serving_pid(mockd.pid))
        assert argv[2:4] == ["-N", "-F"], argv


def test_the_pid_holder_passes_stop_on(mockd: MockDaemon) -> None:
    """SIGTERM to the unit's pid (the holder) stops the serving daemon; nothing is left."""
    for _ in range(2):
        result = live_update(mockd, BIN / "xsmig")
        assert result.returncode == 0, result.stdout + result.stderr
    serving = serving_pid(mockd.pid)
    assert serving != mockd.pid
    assert mockd.stop() == 0
    assert not Path(f"/proc/{serving}").exists()
