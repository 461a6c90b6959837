"""Debian's xenstore-utils and the 4.17 xenstore-control against ``xsmig mockd``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from peerlib import MockDaemon, PeerInstall, read_line, short_tempdir, start_mockd

from xsmig_daemon.wire.framing import MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op

TOOLS = Path("/usr/bin")
TIMEOUT = 10.0


def xs(daemon: MockDaemon, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_at(daemon.socket_path, tool, *args)


def ok(daemon: MockDaemon, tool: str, *args: str) -> str:
    return ok_at(daemon.socket_path, tool, *args)


def run_at(socket_path: Path, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XENSTORED_PATH=str(socket_path))
    return subprocess.run(
        [str(TOOLS / tool), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def request(socket_path: Path, op: Op, payload: bytes) -> bytes:
    """One request over a plain blocking socket; returns the reply payload."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(socket_path))
        sock.sendall(encode_message(op, 1, 0, payload))
        decoder = MessageDecoder()
        while (reply := decoder.next_message()) is None:
            data = sock.recv(65536)
            assert data, "daemon closed the connection"
            decoder.feed(data)
        return reply.payload


def ok_at(socket_path: Path, tool: str, *args: str) -> str:
    result = run_at(socket_path, tool, *args)
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


def test_socket_from_environment_and_sigint() -> None:
    rundir = short_tempdir()
    socket_path = rundir / "from-env"
    env = dict(os.environ, XENSTORED_PATH=str(socket_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "xsmig_daemon", "mockd"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert read_line(process.stdout) == f"xsmig mockd: listening on {socket_path}\n"
        assert ok_at(socket_path, "xenstore-read", "/tool/xenstored") == "\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
        assert not socket_path.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(rundir, ignore_errors=True)


def test_rundir_option_and_domain_endpoint() -> None:
    rundir = short_tempdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "xsmig_daemon", "mockd", "--rundir", str(rundir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert read_line(process.stdout) == f"xsmig mockd: listening on {rundir / 'socket'}\n"
        socket_path = rundir / "socket"
        ok_at(socket_path, "xenstore-write", "/local/domain/5/name", "guest")
        ok_at(socket_path, "xenstore-chmod", "-r", "/local/domain/5", "n5")
        assert request(socket_path, Op.INTRODUCE, b"5\x001\x007\x00") == b"OK\0"
        # Debian's tools act as domain 5 through its stand-in ring socket.
        endpoint = rundir / "domain" / "5"
        assert ok_at(endpoint, "xenstore-read", "name") == "guest\n"
        ok_at(endpoint, "xenstore-write", "data/x", "1")
        denied = run_at(endpoint, "xenstore-read", "/tool/xenstored")
        assert denied.returncode != 0
        assert request(endpoint, Op.READ, b"/tool/xenstored\0") == b"EACCES\0"
        assert ok_at(socket_path, "xenstore-ls", "-f", "-p", "/local/domain/5/data") == (
            '/local/domain/5/data/x = "1"   (n5)\n'
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
        assert not endpoint.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(rundir, ignore_errors=True)
