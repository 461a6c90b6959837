"""Live update to a standby successor: the successor's side (docs/liveupdate.md).

Started by the running mock with ``-U`` and ``$XSMIG_STANDBY_FD`` (one end of the
handover channel, wire/handover.py). ``load_standby`` greets, restores the pre-copied tree
as it arrives (validated as a pre-order image), says ``LOADED``, then takes the frozen
delta, its image (validated as a partial stream: parents may be in the pre-copy) and every
fd, and builds the daemon. ``confirm`` then says ``SERVING`` and waits for ``BYE``: only
after it may the successor read a client socket, so an update the running daemon gave up
on (it kills us) never loses a byte. Blocking I/O: nothing else runs in this process yet.
"""

from __future__ import annotations

import array
import gc
import os
import socket
import stat
from dataclasses import dataclass, field

from ..image.errors import ImageError
from ..image.pipeline import ImageParser
from ..image.profiles import SPEC
from ..image.records import End, Record
from ..store import precopy
from ..store.connection import Connection
from ..store.engine import Engine
from ..store.tree import Tree
from ..store.treeload import TreeLoader
from ..wire import handover as ho
from .server import MockDaemon

#: How long the successor waits for the running daemon's next packet (it bounds the update
#: itself with -t; this only ends a successor whose daemon vanished without closing).
CHANNEL_TIMEOUT = 600.0
_FD_SIZE = array.array("i").itemsize


class StandbyError(Exception):
    """The handover did not complete: the running daemon keeps serving, we exit."""


@dataclass
class StandbySuccessor:
    channel: socket.socket
    daemon: MockDaemon
    adopted: list[tuple[socket.socket, Connection]] = field(default_factory=list)
    nodes: int = 0


class _Channel:
    def __init__(self, fd: int, timeout: float) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.set_inheritable(False)
        self.sock.settimeout(timeout)

    def send(self, kind: ho.Kind) -> None:
        self.sock.send(ho.Packet(kind).encode())

    def receive(self) -> tuple[ho.Packet, list[int]]:
        space = socket.CMSG_SPACE(ho.FDS_PER_PACKET * _FD_SIZE)
        try:
            data, ancillary, flags, _ = self.sock.recvmsg(ho.PACKET_MAX, space)
        except TimeoutError:
            raise StandbyError("the running daemon sent nothing in time") from None
        fds: list[int] = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % _FD_SIZE
                fds.extend(array.array("i", payload[:usable]))
        if flags & socket.MSG_CTRUNC:
            raise StandbyError("fds were cut off in transit")
        if not data:
            raise StandbyError("the running daemon closed the channel (update abandoned)")
        return ho.decode(data), fds


def load_standby(fd: int, socket_path: str, rundir: str) -> StandbySuccessor:
    """The daemon at the freeze, its fds adopted; collection stays off until it serves.

    The cyclic collector is off while loading and until the caller re-enables it, and the
    pre-copied tree is moved out of its reach (``gc.freeze``): a full collection over a
    large tree would otherwise stall the handover for a long time.
    """
    gc.disable()
    channel = _Channel(fd, CHANNEL_TIMEOUT)
    channel.sock.send(ho.hello().encode())
    try:
        tree, nodes = _receive_precopy(channel)
        gc.freeze()
        channel.send(ho.Kind.LOADED)
        document, records, fds = _receive_frozen(channel)
    except (ImageError, ho.HandoverError) as exc:
        raise StandbyError(str(exc)) from None
    removed = document.get("removed", [])
    children = document.get("children", {})
    if not isinstance(removed, list) or not isinstance(children, dict):
        raise StandbyError("the delta's removed paths or child lists are malformed")
    try:
        engine = precopy.apply(tree, removed, children, records)
    except (KeyError, ValueError) as exc:
        raise StandbyError(f"the delta does not apply: {exc}") from None
    apply_side_facts(engine, document)
    daemon = MockDaemon(socket_path, rundir, engine)
    successor = StandbySuccessor(channel.sock, daemon, nodes=nodes)
    _adopt(successor, fds)
    return successor


def confirm(successor: StandbySuccessor) -> None:
    """Tell the running daemon we are ready; return once it let go (BYE)."""
    channel = successor.channel
    channel.send(ho.Packet(ho.Kind.SERVING).encode())
    try:
        data = channel.recv(ho.PACKET_MAX)
    except TimeoutError:
        raise StandbyError("no BYE from the running daemon") from None
    if not data:
        raise StandbyError("the running daemon gave up before letting go")
    try:
        ho.expect(data, ho.Kind.BYE)
    except ho.HandoverError as exc:
        raise StandbyError(str(exc)) from None
    channel.close()


def _receive_precopy(channel: _Channel) -> tuple[Tree, int]:
    """The pre-copied tree: committed nodes, each after its parent (store/treeload.py
    checks that; the decoder checks the framing)."""
    parser = ImageParser(None, name="the pre-copy")
    loader = TreeLoader(Tree())
    while True:
        try:
            ended = loader.feed(parser.stream(_image_packet(channel, "the pre-copy image")))
        except ImageError as exc:
            raise exc.named(parser.name) from None
        if ended is not None:
            parser.close()
            return loader.finish(), loader.loaded


def _image_packet(channel: _Channel, what: str) -> bytes:
    packet, fds = channel.receive()
    _refuse_fds(fds, packet)
    if packet.kind is not ho.Kind.IMAGE:
        raise StandbyError(f"expected {what}, got {packet.kind.name}")
    return packet.payload


def _receive_frozen(
    channel: _Channel,
) -> tuple[dict[str, object], list[Record], list[tuple[list[object], int]]]:
    pieces: list[bytes] = []
    packet, fds = channel.receive()
    while packet.kind is ho.Kind.DELTA:
        _refuse_fds(fds, packet)
        pieces.append(packet.payload)
        packet, fds = channel.receive()
    document = ho.json_document(pieces, ho.Kind.DELTA)
    if not isinstance(document, dict):
        raise StandbyError("the delta is not a JSON object")
    _refuse_fds(fds, packet)
    if packet.kind is not ho.Kind.IMAGE:
        raise StandbyError(f"expected the frozen image, got {packet.kind.name}")
    # Partial: its nodes' parents may be in the pre-copy only.
    parser = ImageParser(SPEC, migration=True, name="the frozen image")
    records: list[Record] = []
    data = packet.payload
    while True:
        for item in parser.stream(data):
            records.append(item.record)
        if records and isinstance(records[-1], End):
            parser.close()
            break
        data = _image_packet(channel, "the frozen image")
    received: list[tuple[list[object], int]] = []
    packet, fds = channel.receive()
    while packet.kind is ho.Kind.FDS:
        roles = ho.json_document([packet.payload], ho.Kind.FDS)
        if not isinstance(roles, list) or len(roles) != len(fds):
            _close_all(fds)
            raise StandbyError(f"{len(fds)} fds arrived for roles {roles!r}")
        received.extend(zip(roles, fds, strict=True))
        packet, fds = channel.receive()
    _refuse_fds(fds, packet)
    if packet.kind is not ho.Kind.GO:
        raise StandbyError(f"expected GO, got {packet.kind.name}")
    return document, records, received


def _refuse_fds(fds: list[int], packet: ho.Packet) -> None:
    if fds:
        _close_all(fds)
        raise StandbyError(f"fds on a {packet.kind.name} packet")


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def apply_side_facts(engine: Engine, facts: dict[str, object]) -> None:
    """What the stream cannot say about open transactions (docs/liveupdate.md)."""
    by_id = dict(enumerate(engine.connections, start=1))
    doomed = facts.get("doomed", [])
    fires = facts.get("fires", [])
    assert isinstance(doomed, list) and isinstance(fires, list)
    for conn_id, tx_id, error in doomed:
        tx = by_id[conn_id].transactions.get(tx_id) if conn_id in by_id else None
        if tx is not None:
            tx.failed = error == "ENOMEM"
            for entry in tx.touched.values():
                entry.generation = -1
    for conn_id, tx_id, pending in fires:
        tx = by_id[conn_id].transactions.get(tx_id) if conn_id in by_id else None
        if tx is not None:
            exact = dict(pending)
            for node_path, entry in tx.touched.items():
                entry.fire = node_path in exact
                entry.fire_exact = bool(exact.get(node_path, True))


def _socket(fd: int, *, listening: bool) -> socket.socket:
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        raise StandbyError(f"fd {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    if bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)) != listening:
        raise StandbyError(f"fd {fd} is not a {'listening' if listening else 'connected'} socket")
    return sock


def _adopt(successor: StandbySuccessor, fds: list[tuple[list[object], int]]) -> None:
    daemon, engine = successor.daemon, successor.daemon.engine
    by_id = dict(enumerate(engine.connections, start=1))
    for role, fd in fds:
        match role:
            case ["listener"]:
                daemon.adopted_listener = _socket(fd, listening=True)
            case ["domain-listener", int(domid)]:
                daemon.adopted_domain_listeners[domid] = _socket(fd, listening=True)
            case ["conn", int(conn_id)] if conn_id in by_id:
                conn = by_id.pop(conn_id)
                conn.fd = fd
                successor.adopted.append((_socket(fd, listening=False), conn))
            case _:
                raise StandbyError(f"fd with an unknown role {role!r}")
