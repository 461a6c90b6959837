"""Debian's xenstore-utils and the 4.17 xenstore-control against ``xsmig mockd``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from peerlib import MockDaemon, PeerInstall, short_tempdir, start_mockd

TOOLS = Path("/usr/bin")
TIMEOUT = 10.0


def xs(daemon: MockDaemon, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XENSTORED_PATH=str(daemon.socket_path))
    return subprocess.run(
        [str(TOOLS / tool), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(daemon: MockDaemon, tool: str, *args: str) -> str:
    result = xs(daemon, tool, *args)
    assert result.returncode == 0, f"{tool} {args}: {result.stderr}"
    return result.stdout


def test_write_read_list_ls(mockd: MockDaemon) -> None:
    ok(mockd, "xenstore-write", "/vm/1/name", "web", "/vm/1/mem", "512")
    assert ok(mockd, "xenstore-read", "/vm/1/name") == "web\n"
    assert ok(mockd, "xenstore-list", "/vm/1") == "name\nmem\n"
    assert ok(mockd, "xenstore-ls", "-f", "-p", "/vm") == (
        '/vm/1 = ""   (n0)\n/vm/1/name = "web"   (n0)\n/vm/1/mem = "512"   (n0)\n'
    )
    failed = xs(mockd, "xenstore-read", "/vm/2")
    assert failed.returncode == 1


def test_exists_rm_chmod(mockd: MockDaemon) -> None:
    ok(mockd, "xenstore-write", "/e/x", "1")
    assert xs(mockd, "xenstore-exists", "/e/x").returncode == 0
    assert xs(mockd, "xenstore-exists", "/e/y").returncode == 1
    ok(mockd, "xenstore-chmod", "/e/x", "n0", "r5", "b7")
    assert ok(mockd, "xenstore-ls", "-f", "-p", "/e") == '/e/x = "1"   (n0,r5,b7)\n'
    ok(mockd, "xenstore-rm", "/e")
    assert xs(mockd, "xenstore-exists", "/e").returncode == 1


def test_watch(mockd: MockDaemon) -> None:
    env = dict(os.environ, XENSTORED_PATH=str(mockd.socket_path))
    watcher = subprocess.Popen(
        [str(TOOLS / "xenstore-watch"), "-n", "2", "/watched"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        # The first line is the initial event, sent once the watch is registered.
        assert watcher.stdout.readline() == "/watched\n"
        ok(mockd, "xenstore-write", "/watched/child", "1")
        out, _ = watcher.communicate(timeout=TIMEOUT)
        assert out == "/watched/child\n"
        assert watcher.returncode == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


def test_xenstore_control(mockd: MockDaemon, peer_install: PeerInstall) -> None:
    help_text = mockd.client("xenstore-control", "help").stdout
    assert [line.split("\t")[0] for line in help_text.splitlines() if "\t" in line][:2] == [
        "check",
        "log",
    ]
    assert mockd.client("xenstore-control", "check").stdout.strip() == "OK"
    assert mockd.client("xenstore-control", "print", "hi").stdout.strip() == "OK"
    quota = mockd.client("xenstore-control", "quota").stdout
    assert "nodes            :     1000 Nodes per domain" in quota
    mockd.client("xenstore-control", "quota", "set", "nodes", "12")
    assert "nodes            :       12" in mockd.client("xenstore-control", "quota").stdout
    soft = mockd.client("xenstore-control", "quota-soft").stdout
    assert "memory           :  2097152" in soft
    bad = mockd.client("xenstore-control", "no-such-command", check=False)
    assert bad.returncode != 0
    assert ok(mockd, "xenstore-read", "/tool/xenstored") == "\n"


def test_sigterm_stops_gracefully(peer_install: PeerInstall) -> None:
    rundir = short_tempdir()
    daemon = start_mockd(rundir, install=peer_install)
    try:
        assert "xsmig mockd: listening on" in daemon.log()
        ok(daemon, "xenstore-write", "/x", "1")
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=TIMEOUT) == 0
        assert not daemon.socket_path.exists()
    finally:
        if daemon.alive():
            daemon.process.kill()
            daemon.process.wait()
        shutil.rmtree(rundir, ignore_errors=True)
