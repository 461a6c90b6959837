"""Live update to a standby successor: the running mock's side (docs/liveupdate.md).

``hand_over_to_standby`` starts the successor binary beside the running daemon with one end
of a private ``SOCK_SEQPACKET`` pair (``$XSMIG_STANDBY_FD``), waits for its greeting,
pre-copies the tree while the daemon keeps serving, then holds every task of the daemon at
its gate (the freeze), sends the delta, passes every fd with SCM_RIGHTS and waits for
``SERVING``. Only after that acknowledgement does it answer ``BYE``: from then on the
successor serves and this process must let go (``let_go``: become or inform the pid holder).
Any failure before -- the binary cannot start, is no xsmig successor, exits, crashes, hangs
past the deadline, sends something else -- kills and reaps the successor, releases the gate
and returns the reason: the daemon goes on serving as if nothing happened.
"""

from __future__ import annotations

import array
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import trio

from ..image.encoder import encode_image
from ..image.records import ConnectionData, Header, NodeData, Record
from ..store import precopy
from ..store.connection import Connection
from ..wire import handover as ho
from . import pidholder
from .server import MockDaemon

#: The channel's fd number in the successor.
STANDBY_ENV = "XSMIG_STANDBY_FD"
#: The pid holder's pipe (write end), passed down every successor (pidholder.py).
HOLDER_ENV = "XSMIG_PID_HOLDER_FD"
IMAGE_HEADER = Header(2, False)
#: Bytes of image encoded between two yields to the serving tasks during the pre-copy
#: (about 250 nodes: a client waits at most that long for its turn).
_BATCH = 16384


class HandoverFailedError(Exception):
    """One line for the requester: why the successor did not take over."""


@dataclass
class FdRoles:
    """Every fd to pass, and what it is (the successor adopts them by role)."""

    fds: list[int] = field(default_factory=list)
    roles: list[list[object]] = field(default_factory=list)

    def add(self, fd: int, *role: object) -> None:
        self.fds.append(fd)
        self.roles.append(list(role))


def collect_fds(daemon: MockDaemon, conn_ids: dict[Connection, int]) -> FdRoles:
    found = FdRoles()
    if daemon.listener is not None:
        found.add(daemon.listener.fileno(), "listener")
    for conn, sock in daemon.client_sockets().items():
        if conn in conn_ids:
            found.add(sock.fileno(), "conn", conn_ids[conn])
    for domid, listener in daemon.domain_listeners.items():
        found.add(listener.fileno(), "domain-listener", domid)
    return found


@dataclass
class Attempt:
    """One standby successor being started: its process and our end of the channel."""

    process: trio.Process
    channel: trio.socket.SocketType
    holder_read: int | None

    async def receive(self, what: str) -> bytes:
        data = await self.channel.recv(ho.PACKET_MAX)
        if not data:
            raise HandoverFailedError(
                f"the successor closed the handover channel {what}{await self.status()}"
            )
        return data

    async def status(self) -> str:
        """How the successor ended, if it did within a second (for the reason text)."""
        with trio.move_on_after(1):
            code = await self.process.wait()
            if code < 0:
                return f" (killed by {signal.Signals(-code).name})"
            return f" (exit status {code})"
        return ""

    async def send(self, packet: ho.Packet, fds: Sequence[int] = ()) -> None:
        data = packet.encode()
        if fds:
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            await self.channel.sendmsg([data], ancillary)
        else:
            await self.channel.send(data)

    async def abort(self) -> None:
        """Kill and reap the successor; nothing of it survives."""
        self.channel.close()
        if self.holder_read is not None:
            os.close(self.holder_read)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with trio.CancelScope(shield=True):
            await self.process.wait()


async def start_successor(argv: Sequence[str], environ: dict[str, str]) -> Attempt:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(environ)
    env[STANDBY_ENV] = str(theirs.fileno())
    keep = [theirs.fileno()]
    holder_read = None
    if HOLDER_ENV in env:
        keep.append(int(env[HOLDER_ENV]))
    else:
        holder_read, holder_write = os.pipe()
        env[HOLDER_ENV] = str(holder_write)
        keep.append(holder_write)
    try:
        process = await trio.lowlevel.open_process(list(argv), env=env, pass_fds=keep)
    except OSError as exc:
        ours.close()
        if holder_read is not None:
            os.close(holder_read)
        raise HandoverFailedError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    finally:
        theirs.close()
        if holder_read is not None:
            os.close(int(env[HOLDER_ENV]))
    return Attempt(process, trio.socket.from_stdlib_socket(ours), holder_read)


async def precopy_tree(attempt: Attempt, daemon: MockDaemon) -> None:
    """Send the tree as an image while the daemon serves; the journal records changes."""
    tree = daemon.engine.tree
    precopy.start(tree)
    for piece in precopy.tree_image(tree, IMAGE_HEADER, _BATCH):
        for packet in ho.image_packets(piece):
            await attempt.send(packet)


def with_ok(records: list[Record], owner_id: int | None, ok: bytes) -> list[Record]:
    if owner_id is None:
        return records
    return [
        ConnectionData(r.conn_id, r.spec, r.in_data, r.out_data + ok, r.out_resp_len, r.unique_id)
        if isinstance(r, ConnectionData) and r.conn_id == owner_id
        else r
        for r in records
    ]


async def send_frozen(
    attempt: Attempt, daemon: MockDaemon, ok: bytes, owner: Connection, extra: dict[str, object]
) -> None:
    """The delta, the frozen state's image and every fd (the daemon is held at its gate)."""
    engine = daemon.engine
    delta = precopy.frozen_delta(engine, precopy.stop(engine.tree))
    conn_ids = {conn: i for i, conn in enumerate(engine.connections, start=1)}
    records = with_ok(delta.records, conn_ids.get(owner), ok)
    for packet in ho.json_packets(ho.Kind.DELTA, {**delta.document(), **extra}):
        await attempt.send(packet)
    image = b"".join(encode_image(records, IMAGE_HEADER))
    for packet in ho.image_packets(image):
        await attempt.send(packet)
    fds = collect_fds(daemon, conn_ids)
    for start in range(0, len(fds.fds), ho.FDS_PER_PACKET):
        end = start + ho.FDS_PER_PACKET
        packet = ho.json_packets(ho.Kind.FDS, fds.roles[start:end])[0]
        await attempt.send(packet, fds.fds[start:end])
    await attempt.send(ho.Packet(ho.Kind.GO))


def changed_nodes(records: Iterable[Record]) -> int:
    return sum(1 for r in records if isinstance(r, NodeData) and r.committed)


def block_signals() -> None:
    """From BYE on, a stop signal is not ours to act on: kept pending across the exec into
    the holder (the mask survives it), or passed on by the holder once we exited."""
    signal.pthread_sigmask(signal.SIG_BLOCK, pidholder.FORWARDED)


def unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, pidholder.FORWARDED)


def let_go(attempt: Attempt) -> None:
    """The successor serves: leave without touching a socket (no finally blocks run).

    The first daemon of a service becomes the pid holder (exec: its memory is freed, its pid
    stays the service's); a later one tells the holder its successor's pid and exits.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = attempt.process.pid
    if attempt.holder_read is None:
        os.write(int(os.environ[HOLDER_ENV]), f"{pid}\n".encode())
        os._exit(0)
    os.set_inheritable(attempt.holder_read, True)
    os.execv(
        sys.executable,
        [sys.executable, "-I", "-S", pidholder.__file__, str(attempt.holder_read), str(pid)],
    )


class StandbyHandover:
    """One attempt, start to BYE (``run``, bounded by the caller), and its way back."""

    def __init__(self, daemon: MockDaemon, ok: bytes, owner: Connection) -> None:
        self.daemon = daemon
        self.ok = ok
        self.owner = owner
        self.attempt: Attempt | None = None
        self.frozen_at = 0.0
        #: Seconds from the successor's greeting to its LOADED (the pre-copy, while serving).
        self.precopy_time = 0.0

    async def run(
        self, argv: Sequence[str], env: dict[str, str], facts: Callable[[], dict[str, object]]
    ) -> None:
        daemon = self.daemon
        self.attempt = attempt = await start_successor(argv, env)
        ho.check_hello(await attempt.receive("before greeting"))
        started = trio.current_time()
        await precopy_tree(attempt, daemon)
        ho.expect(await attempt.receive("while loading"), ho.Kind.LOADED)
        self.precopy_time = trio.current_time() - started
        daemon.introspection.hold_all()
        gc.disable()  # no full collection inside the freeze
        self.frozen_at = trio.current_time()
        await send_frozen(attempt, daemon, self.ok, self.owner, facts())
        ho.expect(await attempt.receive("before serving"), ho.Kind.SERVING)
        block_signals()
        try:
            await attempt.send(ho.Packet(ho.Kind.BYE))
        except BaseException:
            unblock_signals()
            raise

    def let_go(self) -> None:
        assert self.attempt is not None
        print(
            f"xsmig mockd: live update: pid {self.attempt.process.pid} serves, after "
            f"{(trio.current_time() - self.frozen_at) * 1000:.1f} ms frozen here "
            f"(pre-copy of {len(self.daemon.engine.tree.nodes)} nodes: "
            f"{self.precopy_time:.1f} s while serving)",
            flush=True,
        )
        let_go(self.attempt)

    async def status(self) -> str:
        return await self.attempt.status() if self.attempt is not None else ""

    async def undo(self) -> None:
        """Not handed over (failed, or cancelled by -a): everything back as it was."""
        precopy.stop(self.daemon.engine.tree)
        if self.attempt is not None:
            await self.attempt.abort()
        self.daemon.introspection.release_all()
        gc.enable()
