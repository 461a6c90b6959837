"""``xsmig mockd --restore IMAGE|unix:PATH``: start the mock from a migration stream.

The stream is decoded and validated record by record as it is read (from a file, or from
the one producer that connects to ``unix:PATH``, e.g. ``xsmig snapshot --to unix:PATH``);
the engine is built only once END has arrived and validated, so a bad or truncated stream
ends the command with one line and exit 1 and never serves a half-loaded state.

Everything the stream holds comes back: nodes, permissions, domains with their stand-in
ring endpoints, quotas, features, watches, open transactions and their nodes, pending
input and output. A *socket* connection cannot be resumed without its fd, which only a live
update hands over. It is reported (one line each) and, by default, kept *detached*: its
watches, transactions and queued output stay in the state, inert, so the restored daemon
holds exactly the stream's state and its next snapshot holds the connection unchanged.
``--drop-unresumed`` removes them instead, as if those clients had disconnected.
docs/introspect.md explains the choice.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import trio

from ..argtypes import positive_seconds
from ..image.errors import ImageError
from ..image.pipeline import ImageParser
from ..image.profiles import DUMP_SOURCE
from ..image.records import (
    ConnectionData,
    NodeData,
    Record,
    SocketSpec,
    TransactionData,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
)
from ..imagefile import ImageFileError, open_image
from ..sockpath import OwnedPath, SocketPathError, check_free, listen_at
from ..store.connection import Connection
from ..store.engine import Engine
from ..store.image_state import restore_engine
from .server import MockDaemon

UNIX_PREFIX = "unix:"
DEFAULT_TIMEOUT = 60.0
_RECEIVE_SIZE = 1 << 18


class RestoreError(Exception):
    """The stream could not be loaded (``--restore``, or a live update's dump, which then
    stays for the operator); the message is one line naming where and why."""


@dataclass(slots=True)
class Unresumed:
    """A socket connection of the stream that has no fd in this process."""

    conn_id: int
    fd: int
    watches: int
    transactions: int
    pending_in: int
    pending_out: int

    def describe(self, kept: bool) -> str:
        what = "kept detached" if kept else "dropped"
        return (
            f"connection {self.conn_id} (socket fd {self.fd}) not resumed, its fd stays "
            f"with the daemon that wrote the stream: {self.watches} watches, "
            f"{self.transactions} open transactions, "
            f"{self.pending_in}+{self.pending_out} pending bytes in+out; {what}"
        )


@dataclass(slots=True)
class Restored:
    engine: Engine
    source: str
    records: int
    nodes: int
    unresumed: list[Unresumed] = field(default_factory=list)
    #: The engine connection of each entry of ``unresumed``.
    unresumed_conns: list[Connection] = field(default_factory=list)

    def drop_unresumed(self) -> None:
        for conn in self.unresumed_conns:
            self.engine.disconnect(conn)


def build(records: list[Record], source: str) -> Restored:
    """The engine for validated ``records`` (END included), and what was not resumed."""
    try:
        engine = restore_engine(records)
    except (ValueError, KeyError) as exc:
        raise RestoreError(f"{source}: the stream does not restore: {exc}") from None
    counts: Counter[tuple[str, int]] = Counter()
    for record in records:
        if isinstance(record, WatchData | WatchDataExtended | UnwrittenDepthWatch):
            counts["watch", record.conn_id] += 1
        elif isinstance(record, TransactionData):
            counts["tx", record.conn_id] += 1
    restored = Restored(engine, source, len(records), _count_nodes(records))
    conn_records = [r for r in records if isinstance(r, ConnectionData)]
    for record, conn in zip(conn_records, engine.connections, strict=True):
        if isinstance(record.spec, SocketSpec):
            restored.unresumed.append(
                Unresumed(
                    record.conn_id,
                    record.spec.fd,
                    counts["watch", record.conn_id],
                    counts["tx", record.conn_id],
                    len(record.in_data),
                    len(record.out_data),
                )
            )
            restored.unresumed_conns.append(conn)
    return restored


def _count_nodes(records: Iterable[Record]) -> int:
    return sum(1 for r in records if isinstance(r, NodeData) and r.committed)


def load_file(path: str) -> Restored:
    """Decode, validate and restore an image file (``-`` is standard input)."""
    try:
        # A C daemon's dump as it is (Xen 4.22's broken depth watches come back depth-less).
        records = open_image(path, DUMP_SOURCE, collect_defects=True).records()
    except (ImageError, ImageFileError) as exc:
        raise RestoreError(str(exc)) from None
    return build(records, path)


async def receive(path: str, timeout: float = DEFAULT_TIMEOUT) -> Restored:
    """Listen on ``path``, take the stream of the first producer that connects, restore it.

    Waiting for the producer and every wait for its next bytes is bounded by ``timeout``.
    The listening socket is removed before this returns.
    """
    where = f"{UNIX_PREFIX}{path}"
    try:
        check_free(path)
        listener = trio.socket.from_stdlib_socket(listen_at(path, 1))
        owned = OwnedPath(path)
    except SocketPathError as exc:
        raise RestoreError(f"{UNIX_PREFIX}{exc}") from None
    except OSError as exc:
        raise RestoreError(f"{where}: cannot listen: {exc.strerror or exc}") from None
    with listener:
        try:
            try:
                with trio.fail_after(timeout):
                    conn, _ = await listener.accept()
            except trio.TooSlowError:
                raise RestoreError(f"{where}: no producer connected within {timeout:g} s") from None
        finally:
            owned.unlink()
    with conn:
        records = await _read_stream(conn, where, timeout)
    return build(records, where)


async def receive_until_signal(path: str, timeout: float = DEFAULT_TIMEOUT) -> Restored:
    """``receive``; SIGTERM or SIGINT end it with a RestoreError (the socket is removed)."""
    restored: list[Restored] = []
    errors: list[RestoreError] = []
    stopped_by: list[str] = []
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def load() -> None:
                try:
                    restored.append(await receive(path, timeout))
                except RestoreError as exc:
                    errors.append(exc)
                nursery.cancel_scope.cancel()

            nursery.start_soon(load)
            async for signum in signals:
                stopped_by.append(signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    if errors:
        raise errors[0]
    if stopped_by:
        raise RestoreError(f"{UNIX_PREFIX}{path}: {stopped_by[0]} before the stream was complete")
    return restored[0]


async def _read_stream(conn: trio.socket.SocketType, where: str, timeout: float) -> list[Record]:
    parser = ImageParser(DUMP_SOURCE, collect_defects=True, name=where)
    records: list[Record] = []
    try:
        while True:
            try:
                with trio.fail_after(timeout):
                    data = await conn.recv(_RECEIVE_SIZE)
            except trio.TooSlowError:
                raise RestoreError(
                    f"{where}: the producer sent nothing for {timeout:g} s "
                    f"after {parser.offset} bytes"
                ) from None
            except OSError as exc:
                raise RestoreError(
                    f"{where}: receive failed after {parser.offset} bytes: {exc}"
                ) from None
            if not data:
                parser.close()
                return records
            records.extend(item.record for item in parser.feed(data))
    except ImageError as exc:
        raise RestoreError(str(exc)) from None


def place_listener(sock: socket.socket, wanted_fd: int) -> socket.socket:
    """``sock`` moved to fd ``wanted_fd`` (the stream's GLOBAL_DATA), if that fd is free.

    A successor keeps its predecessor's fd numbers; doing the same here makes the restored
    daemon's next image name the same listening fd. Otherwise ``sock`` is returned as is.
    """
    if wanted_fd < 0 or wanted_fd == sock.fileno() or _fd_open(wanted_fd):
        return sock
    os.dup2(sock.fileno(), wanted_fd, inheritable=False)
    moved = socket.socket(fileno=wanted_fd)
    sock.close()
    return moved


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# -- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--restore",
        metavar="IMAGE|unix:PATH",
        help="start from a migration stream: an image file, or listen on PATH for one "
        "producer (xsmig snapshot --to unix:PATH) and load its stream (docs/introspect.md)",
    )
    parser.add_argument(
        "--restore-timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"unix: longest wait for the producer and for its next bytes ({DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--drop-unresumed",
        action="store_true",
        help="drop the socket connections of the stream (no fd) instead of keeping them detached",
    )


def restored_daemon(args: argparse.Namespace, socket_path: str, rundir: str) -> MockDaemon:
    """Load ``args.restore``, report what was not resumed, and build the daemon serving it."""
    source: str = args.restore
    if source.startswith(UNIX_PREFIX):
        restored = trio.run(receive_until_signal, source[len(UNIX_PREFIX) :], args.restore_timeout)
    else:
        restored = load_file(source)
    say = functools.partial(print, flush=True)
    say(
        f"xsmig mockd: restored {restored.records} records ({restored.nodes} nodes, "
        f"{len(restored.engine.connections)} connections) from {restored.source}"
    )
    for item in restored.unresumed:
        say(f"xsmig mockd: {item.describe(kept=not args.drop_unresumed)}")
    if args.drop_unresumed:
        restored.drop_unresumed()
    return MockDaemon(socket_path, rundir, restored.engine)
