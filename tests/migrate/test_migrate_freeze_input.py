"""What a guest sends to its old endpoint while the migration has its source frozen.

From the export on, the source's endpoint is sealed: the guest's write fails (EPIPE) at
once instead of vanishing, and what the endpoint took before the seal is answered exactly
once, at the destination after a release, at the source after an abort. The driver runs in
this process; a checkpoint makes the guest write at a chosen phase.
"""

from __future__ import annotations

import signal
import socket

import pytest
import trio
from miglib import build_domain, xsmig
from peerlib import MockDaemon
from wireclient import PeerError, SocketStream, WireClient, ok

from xsmig_daemon.export.migrate import MigrationError
from xsmig_daemon.export.migrate_run import Options, migrate
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

#: A WRITE the guest splits: the first part reaches the source before the freeze.
WRITE = encode_message(Op.WRITE, 77, 0, b"data/split\0x")
FIRST = 9


def refused_write(guest: WireClient, data: bytes) -> str:
    try:
        guest.send_raw(data)
    except BrokenPipeError as exc:
        return f"EPIPE: {exc}"
    return "accepted"


def drain_to_eof(guest: WireClient) -> list[bytes]:
    """Everything left on the old endpoint, until the daemon closes it."""
    got = []
    while True:
        try:
            got.append(guest.receive().payload)
        except PeerError as exc:
            assert "closed" in str(exc), exc
            return got


class Guest:
    """The guest on the source's endpoint: half a WRITE before the freeze, the rest and a
    whole request during it."""

    def __init__(self, source: MockDaemon) -> None:
        self.client = source.guest(7)
        assert ok(self.client, Op.READ, "name") == b"web"  # attached: served by the source
        self.during: list[str] = []

    async def checkpoint(self, phase: str) -> None:
        if phase == "precopied":
            await trio.to_thread.run_sync(self.client.send_raw, WRITE[:FIRST])
        elif phase == "exported":
            for data in (WRITE[FIRST:], encode_message(Op.WRITE, 78, 0, b"data/late\0y")):
                self.during.append(await trio.to_thread.run_sync(refused_write, self.client, data))


async def test_release_the_guest_is_told_and_finishes_at_the_destination(
    two_mocks: tuple[MockDaemon, MockDaemon],
) -> None:
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    guest = Guest(a)
    await migrate(
        str(a.socket_path), str(b.socket_path), 7, 12, Options(), checkpoint=guest.checkpoint
    )
    assert [what.split(":")[0] for what in guest.during] == ["EPIPE", "EPIPE"]
    assert drain_to_eof(guest.client) == []  # nothing answered at the source
    guest.client.close()
    with b.guest(12) as moved, b.connect() as admin:
        assert admin.call(Op.READ, "/local/domain/12/data/split").payload == b"ENOENT\0"
        moved.send_raw(WRITE[FIRST:])  # the part the old endpoint refused
        reply = moved.receive()
        assert (reply.req_id, reply.op, reply.payload) == (77, Op.WRITE, b"OK\0")
        assert moved.is_silent(0.2)  # answered once
        assert ok(admin, Op.READ, "/local/domain/12/data/split") == b"x"
        assert admin.call(Op.READ, "/local/domain/12/data/late").payload == b"ENOENT\0"


async def test_abort_the_guest_is_told_and_finishes_at_the_source(
    two_mocks: tuple[MockDaemon, MockDaemon],
) -> None:
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    guest = Guest(a)

    async def checkpoint(phase: str) -> None:
        await guest.checkpoint(phase)
        if phase == "exported":  # the destination is lost: the source aborts
            b.process.send_signal(signal.SIGKILL)
            await trio.to_thread.run_sync(b.process.wait)

    with pytest.raises(MigrationError, match="domain 7 stays at the source"):
        await migrate(
            str(a.socket_path), str(b.socket_path), 7, 12, Options(), checkpoint=checkpoint
        )
    assert [what.split(":")[0] for what in guest.during] == ["EPIPE", "EPIPE"]
    assert drain_to_eof(guest.client) == []  # the half WRITE waits for its rest
    guest.client.close()
    with a.guest(7) as again, a.connect() as admin:
        again.send_raw(WRITE[FIRST:])
        reply = again.receive()
        assert (reply.req_id, reply.op, reply.payload) == (77, Op.WRITE, b"OK\0")
        assert again.is_silent(0.2)
        assert ok(admin, Op.READ, "/local/domain/7/data/split") == b"x"
        assert admin.call(Op.READ, "/local/domain/7/data/late").payload == b"ENOENT\0"


def flood(guest: WireClient, request: bytes, count: int) -> int:
    """Send ``count`` copies of ``request`` without reading, as far as the socket takes
    them; returns how many bytes it took."""
    assert isinstance(guest.stream, SocketStream)
    sock = guest.stream.sock
    data = request * count
    sent = 0
    sock.setblocking(False)
    try:
        while sent < len(data):
            sent += sock.send(data[sent:])
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return sent


def test_more_unread_input_than_a_stream_holds(two_mocks: tuple[MockDaemon, MockDaemon]) -> None:
    """The export is refused (nothing frozen, the domain stays); the source answers every
    request the sealed endpoint took exactly once, on it or, for what it had not sent when
    it closed, on the guest's next attachment."""
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    guest = a.guest(7)
    assert ok(guest, Op.READ, "name") == b"web"
    request = encode_message(Op.READ, 5, 0, b"name\0")
    taken = flood(guest, request, 20000)
    assert taken > 2 * 0xFFFF, taken  # more than a stream's pending input can hold
    run = xsmig(
        "migrate", "--from", str(a.socket_path), "--to", str(b.socket_path), "--domain", "7"
    )
    assert run.returncode == 1
    assert "more unread input than a stream holds" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    got = drain_to_eof(guest)
    assert set(got) <= {b"web"}
    guest.close()
    whole, part = divmod(taken, len(request))
    with a.guest(7) as again:  # replies not sent before the close come here, once
        again.send_raw(request[part:] if part else b"")  # the rest of a split last request
        for _ in range(whole + bool(part) - len(got)):
            assert again.receive().payload == b"web"
        assert again.is_silent(0.2)
        assert ok(again, Op.READ, "name") == b"web"


async def test_a_connection_not_yet_accepted_is_reset_at_the_release(
    two_mocks: tuple[MockDaemon, MockDaemon],
) -> None:
    """A guest that connects to its old endpoint during the freeze waits in the listen
    backlog, unaccepted; the release closes the endpoint, so the connection is reset (no
    reply, nothing processed anywhere) and the guest goes to the destination's endpoint."""
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as late:

        async def checkpoint(phase: str) -> None:
            if phase == "exported":
                await late.connect(str(a.rundir / "domain" / "7"))  # taken by the backlog
                await late.send(encode_message(Op.WRITE, 5, 0, b"data/late\0z"))

        await migrate(
            str(a.socket_path), str(b.socket_path), 7, 12, Options(), checkpoint=checkpoint
        )
        with trio.fail_after(30):
            try:
                answer = await late.recv(4096)
            except ConnectionResetError:
                answer = b"reset"
        assert answer in (b"", b"reset")
    with b.guest(12) as moved, b.connect() as admin:
        assert ok(moved, Op.READ, "name") == b"web"
        assert admin.call(Op.READ, "/local/domain/12/data/late").payload == b"ENOENT\0"
    assert not (a.rundir / "domain" / "7").exists()
