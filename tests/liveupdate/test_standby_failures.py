"""A standby successor that fails in any way before it takes over changes nothing.

The running mock starts the successor beside itself and lets go only after the successor's
acknowledgement. Each broken successor here fails at a different step; every time the
requester gets one line saying why, the daemon (same pid) keeps every client, its watches
and a transaction open across the attempt, the broken process is reaped, and the next
update with a good successor works.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lusupport import control, live_update, mock_launcher, write_launcher
from peerlib import MockDaemon
from wireclient import WireClient

from xsmig_daemon.wire.ops import Op

#: Python successors speaking (part of) the handover protocol, then misbehaving.
_GREET_THEN = (
    "import os, signal, socket, time\n"
    "s = socket.socket(fileno=int(os.environ['XSMIG_STANDBY_FD']))\n"
    "s.send(b'HELOxsmig-successor 1')\n"
)
BROKEN = {
    "missing": None,
    "exits 1 at start": "exit 1",
    "not an xsmig successor": "exec sleep 60",
    "garbage on the channel": (
        f'exec {sys.executable} -c "import os; '
        "os.write(int(os.environ['XSMIG_STANDBY_FD']), b'garbage!')\" ; sleep 60"
    ),
    "crashes mid-load": _GREET_THEN + "s.recv(70000)\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "closes the handover socket": _GREET_THEN + "s.recv(70000)\ns.close()\ntime.sleep(60)\n",
    "hangs after loading": _GREET_THEN + "time.sleep(60)\n",
}
REASONS = {
    "missing": "No such file",
    "exits 1 at start": "exit status 1",
    "not an xsmig successor": "did not take over within 3 s",
    "garbage on the channel": "not an xsmig successor",
    "crashes mid-load": "SIGSEGV",
    "closes the handover socket": "the handover channel",
    "hangs after loading": "did not take over within 3 s",
}


def broken_successor(directory: Path, how: str) -> Path:
    body = BROKEN[how]
    directory.mkdir(exist_ok=True)
    path = directory / "broken"
    if body is None:
        return path
    if body.startswith("import"):
        script = directory / "broken.py"
        script.write_text(body)
        return write_launcher(path, f"exec {sys.executable} {script}")
    return write_launcher(path, body)


def children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


@pytest.mark.parametrize("how", list(BROKEN))
def test_broken_successor_changes_nothing(mockd: MockDaemon, tmp_path: Path, how: str) -> None:
    pid = mockd.pid
    admin = mockd.connect()
    watcher = mockd.connect()
    assert watcher.call(Op.WATCH, "/keep", "k").payload == b"OK\0"
    assert watcher.event().payload == b"/keep\0k\0"
    assert admin.call(Op.WRITE, "/tx/v", "0").payload == b"OK\0"
    txc = mockd.connect()
    tx = int(txc.call(Op.TRANSACTION_START, "").payload.rstrip(b"\0"))
    assert txc.call(Op.WRITE, "/tx/v", "1", tx_id=tx).payload == b"OK\0"
    binary = broken_successor(tmp_path, how)
    if how == "missing":
        assert control(admin, "live-update", "-f", str(mock_launcher(tmp_path))) == "OK"
        (tmp_path / "lu-mock").unlink()
    else:
        assert control(admin, "live-update", "-f", str(binary)) == "OK"
    text = control(admin, "live-update", "-s", "-t", "3")
    assert text.startswith("Error activating new binary: "), text
    assert "\n" not in text and REASONS[how] in text, text
    assert mockd.pid == pid and mockd.alive()
    assert children(pid) == []  # the broken successor is reaped
    assert admin.call(Op.WRITE, "/keep/x", "1").payload == b"OK\0"
    assert watcher.event().payload == b"/keep/x\0k\0"
    assert watcher.is_silent(0.2)
    assert txc.call(Op.TRANSACTION_END, "T", tx_id=tx).payload == b"OK\0"
    assert admin.call(Op.READ, "/tx/v").payload == b"1\0"
    # Then a good successor takes over, every client still connected.
    result = live_update(mockd, mock_launcher(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert admin.call(Op.WRITE, "/keep/y", "1").payload == b"OK\0"
    assert watcher.event().payload == b"/keep/y\0k\0"
    assert "Traceback" not in mockd.log()
    for client in (admin, watcher, txc):
        client.close()


def test_xen_tool_shows_the_reason(mockd: MockDaemon, tmp_path: Path) -> None:
    result = live_update(mockd, write_launcher(tmp_path / "exit1", "exit 1"), "-t", "5")
    assert result.returncode != 0
    assert "exit status 1" in result.stdout + result.stderr
    client: WireClient = mockd.connect()
    assert client.call(Op.READ, "/tool").payload == b""
    client.close()
