"""Helpers of the introspect tests: mock processes (also ``--restore unix:``), ``xsmig``
subcommands as processes, and the round-trip state of issue 4 built with real requests."""

from __future__ import annotations

import fcntl
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from peerlib import (
    REPO_ROOT,
    MockDaemon,
    PeerInstall,
    short_tempdir,
    start_mockd,
    wait_until,
)
from wireclient import SocketStream, WireClient, ok, write

from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import Record
from xsmig_daemon.wire.ops import Op

XSMIG = (sys.executable, "-m", "xsmig_daemon")
DOMAINS = range(1, 51)
SOCKET_CLIENTS = 5


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def xsmig(*args: str, timeout: float = 120) -> Run:
    result = subprocess.run(
        [*XSMIG, *args], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )
    return Run(result.returncode, result.stdout, result.stderr)


def snapshot(socket: Path, *args: str) -> Run:
    return xsmig("snapshot", "--socket", str(socket), *args)


def records_of(image: Path, *, migration: bool = False) -> list[Record]:
    """The image's records, decoded and validated by the project's reader."""
    return [item.record for item in read_image([image.read_bytes()], migration=migration)]


@contextmanager
def mock(*args: str) -> Iterator[MockDaemon]:
    """``xsmig mockd --socket DIR/socket ARGS`` once it printed its readiness line."""
    daemon = start_mockd(args=args)
    try:
        yield daemon
    finally:
        daemon.stop()


@contextmanager
def restoring_mock(stream: Path) -> Iterator[MockDaemon]:
    """``xsmig mockd --restore unix:STREAM``, returned once STREAM listens (not yet ready)."""
    rundir = short_tempdir()
    with open(rundir / MockDaemon.log_name, "ab") as log:
        process = subprocess.Popen(
            [
                *XSMIG,
                "mockd",
                "--socket",
                str(rundir / "socket"),
                "--restore",
                f"unix:{stream}",
                "--restore-timeout",
                "30",
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = MockDaemon(PeerInstall.locate(), rundir, process, True)
    try:
        wait_until(lambda: stream.exists() or not daemon.alive(), 30, "the restore socket")
        yield daemon
    finally:
        daemon.stop()


@dataclass
class RoundTripState:
    """What the test set up, to check the image against (not against the code's output)."""

    clients: list[WireClient] = field(default_factory=list)
    quotas: dict[int, int] = field(default_factory=dict)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def build_round_trip_state(daemon: MockDaemon) -> RoundTripState:
    """Issue 4's state: 50 introduced domains (each: a depth watch and a plain one, one open
    transaction with a read, a write and a delete, non-default quotas, watch events queued
    and undelivered because no guest reads its ring), 5 socket clients with watches (one
    with a depth) and open transactions, one of them with half a request pending."""
    state = RoundTripState()
    dom0 = daemon.connect()
    state.clients.append(dom0)
    write(dom0, "/shared/news", b"0")
    ok(dom0, Op.SET_PERMS, "/shared", "r0")
    ok(dom0, Op.SET_PERMS, "/shared/news", "r0")
    for domid in DOMAINS:
        ok(dom0, Op.INTRODUCE, str(domid), str(0x1000 + domid), str(10 + domid))
        home = f"/local/domain/{domid}"
        for name in ("name", "data/keep", "data/old"):
            write(dom0, f"{home}/{name}", f"{name}-{domid}".encode())
        for path in (home, f"{home}/name", f"{home}/data", f"{home}/data/keep", f"{home}/data/old"):
            ok(dom0, Op.SET_PERMS, path, f"n{domid}")
        state.quotas[domid] = 600 + domid
        ok(dom0, Op.SET_QUOTA, str(domid), "nodes", str(state.quotas[domid]))
        with daemon.guest(domid) as guest:
            ok(guest, Op.WATCH, "data", f"data-{domid}", "1")
            ok(guest, Op.WATCH, "/shared", f"shared-{domid}")
            tx_id = int(ok(guest, Op.TRANSACTION_START, "").rstrip(b"\0"))
            assert ok(guest, Op.READ, "data/keep", tx_id=tx_id) == f"data/keep-{domid}".encode()
            write(guest, "data/new", b"in-tx", tx_id)
            ok(guest, Op.RM, "data/old", tx_id=tx_id)
    for index in range(1, SOCKET_CLIENTS):
        client = daemon.connect()
        state.clients.append(client)
        ok(client, Op.WATCH, f"/sock/{index}", f"sock-{index}", *(["2"] if index == 1 else []))
        tx_id = int(ok(client, Op.TRANSACTION_START, "").rstrip(b"\0"))
        ok(client, Op.READ, "/shared/news", tx_id=tx_id)
        write(client, f"/sock/{index}/tx", b"pending", tx_id)
    ok(dom0, Op.WATCH, "/shared", "dom0")
    ok(dom0, Op.TRANSACTION_START, "")
    # Fires every domain's /shared watch: the events wait in the rings nobody reads.
    for round_ in range(3):
        write(dom0, f"/shared/news/{round_}", b"x")
    # Half a request header: received, not processed.
    state.clients[-1].send_raw(b"\x02\x00\x00")
    wait_until_read(state.clients[-1])
    return state


def wait_until_read(client: WireClient, timeout: float = 10.0) -> None:
    """Wait until the daemon has read everything ``client`` sent: for a unix stream socket
    SIOCOUTQ counts what the peer has not consumed yet."""
    assert isinstance(client.stream, SocketStream), "a socket client"
    fd = client.stream.sock.fileno()

    def unread() -> int:
        count: int = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0" * 4))[0]
        return count

    wait_until(lambda: unread() == 0, timeout, "the daemon to read a client's bytes")
