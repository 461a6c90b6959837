"""Exec in place (to a C successor) has no way back: it is checked before the exec."""

from __future__ import annotations

import os
from pathlib import Path

from lusupport import control, mock_launcher
from peerlib import running_mockd

from xsmig_daemon.image.records import (
    DOMID_INVALID,
    ConnectionData,
    GlobalData,
    Header,
    NodeData,
    Permission,
    RingSpec,
)
from xsmig_daemon.mockd.liveupdate import Handover, preflight
from xsmig_daemon.wire.ops import Op

ROOT = (Permission("n", 0),)
XEN_417_HEADER = Header(1, False)


def test_preflight_refuses_what_c_cannot_load(tmp_path: Path) -> None:
    binary = mock_launcher(tmp_path)
    no_global = Handover(XEN_417_HEADER, [NodeData("/", b"", ROOT)], [])
    text = preflight(no_global, str(binary))
    assert text is not None and text.startswith(
        "Error activating new binary: the image is not one xen-4.17"
    )
    assert "GLOBAL_DATA" in text
    dom0 = ConnectionData(1, RingSpec(0, DOMID_INVALID, 1))
    good = Handover(XEN_417_HEADER, [GlobalData(3, 4), dom0, NodeData("/", b"", ROOT)], [])
    assert preflight(good, str(binary)) is None
    assert preflight(good, str(tmp_path / "gone")) == "File not accessible."
    binary.chmod(0o644)
    assert preflight(good, str(binary)) == "File not executable."


def test_successor_gone_before_the_exec_keeps_serving(tmp_path: Path) -> None:
    with running_mockd(args=["--lu-successor", "xen-4.17"]) as mockd:
        pid = mockd.pid
        admin, watcher = mockd.connect(), mockd.connect()
        assert watcher.call(Op.WATCH, "/k", "t").payload == b"OK\0"
        assert watcher.event().payload == b"/k\0t\0"
        launcher = mock_launcher(tmp_path)
        assert control(admin, "live-update", "-f", str(launcher)) == "OK"
        os.unlink(launcher)
        assert control(admin, "live-update", "-s", "-t", "5") == "File not accessible."
        assert not (mockd.rundir / "state_dump").exists()
        assert mockd.pid == pid and mockd.alive()
        assert admin.call(Op.WRITE, "/k/x", "1").payload == b"OK\0"
        assert watcher.event().payload == b"/k/x\0t\0"
        admin.close()
        watcher.close()
