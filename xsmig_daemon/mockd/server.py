"""trio shell of the mock xenstored: listeners, one task pair per client, domain endpoints.

The engine does all xenstore work synchronously; this module only moves bytes. Sockets are
plain non-blocking stdlib sockets and trio is asked only to wait for readiness
(``trio.lowlevel.wait_readable``/``wait_writable``), so a request costs one wakeup: the
reader task wakes on input, lets the engine process it and sends the replies at once when
the socket can take them. A writer task per client sends whatever could not go out at once
and the watch events that other clients' requests queued for it.

The reader reads only while the engine wants input. A client that never reads its replies
therefore stops being read, as C does (see "Output bounding" in docs/mockd.md).

Every introduced domain gets a stand-in for its shared ring: a unix socket at
``<rundir>/domain/<domid>``. One client at a time may attach there and then speaks *as that
domain*. The domain's connection (watches, transactions, queued output) outlives the client,
as a ring outlives a guest that stops looking at it.
"""

from __future__ import annotations

import errno
import os
import socket

import trio

from ..image.records import ConnType
from ..sockpath import OwnedPath, check_free, listen_at, make_own_directory
from ..store.connection import Connection
from ..store.domains import Domain
from ..store.engine import Engine
from .introspect import Introspection
from .migrate import Migration

DEFAULT_SOCKET = "/var/run/xenstored/socket"
READ_SIZE = 65536
BACKLOG = 1024
ACCEPT_RETRY_DELAY = 0.1
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def default_socket_path(environ: dict[str, str] | None = None) -> str:
    """Where Xen's clients look: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket, the default."""
    env = os.environ if environ is None else environ
    if env.get("XENSTORED_PATH"):
        return env["XENSTORED_PATH"]
    if env.get("XENSTORED_RUNDIR"):
        return os.path.join(env["XENSTORED_RUNDIR"], "socket")
    return DEFAULT_SOCKET


class _Signal:
    """A level-triggered wakeup: ``set()`` from sync code, ``await wait()`` in one task."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


class _Link:
    """A live socket attached to an engine connection."""

    def __init__(self, sock: socket.socket, conn: Connection) -> None:
        self.sock = sock
        self.conn = conn
        self.output_ready = _Signal()
        self.input_ready = _Signal()
        self.dead = False


def _listen(path: str) -> socket.socket:
    """A listening socket at ``path`` (``sockpath.listen_at``), non-blocking.

    Binding a unix socket is a local file operation, so it is done synchronously: a domain's
    endpoint then exists before the reply to its INTRODUCE is sent. A path where another
    daemon answers is refused (``sockpath``).
    """
    check_free(path)
    make_own_directory(os.path.dirname(path))
    sock = listen_at(path, BACKLOG)
    sock.setblocking(False)
    return sock


class MockDaemon:
    """Serve ``engine`` on ``socket_path``; domain endpoints under ``rundir/domain``."""

    def __init__(
        self, socket_path: str, rundir: str | None = None, engine: Engine | None = None
    ) -> None:
        self.socket_path = socket_path
        self.rundir = rundir if rundir is not None else os.path.dirname(socket_path)
        self.engine = engine if engine is not None else Engine()
        self._links: dict[Connection, _Link] = {}
        self._domain_scopes: dict[int, trio.CancelScope] = {}
        self._domain_locks: dict[int, trio.Lock] = {}
        #: Listening sockets, kept for a live update (their fds are handed to the successor).
        self.listener: socket.socket | None = None
        self.domain_listeners: dict[int, socket.socket] = {}
        #: Inherited from a predecessor (live update): used instead of creating new ones.
        self.adopted_listener: socket.socket | None = None
        self.adopted_domain_listeners: dict[int, socket.socket] = {}
        self._nursery: trio.Nursery | None = None
        # The connection whose reader is inside the engine: it sends its own output itself.
        self._active: Connection | None = None
        self.engine.on_output = self._wake_writer
        self.engine.on_domain_introduced = self._domain_introduced
        self.engine.on_domain_released = self._domain_released
        #: CONTROL introspect; every task waits at its gate while it is frozen.
        self.introspection = Introspection(self.engine)
        #: CONTROL migrate: one domain out of (or into) this daemon.
        self.migration = Migration(self)

    def domain_socket_path(self, domid: int) -> str:
        return os.path.join(self.rundir, "domain", str(domid))

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the socket path through ``task_status``, serve until cancelled."""
        listener = self.adopted_listener or _listen(self.socket_path)
        owned = OwnedPath(self.socket_path)
        listener.setblocking(False)
        self.listener = listener
        self.engine.listen_fd = listener.fileno()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for domain in self.engine.domains.values():
                    if domain.introduced:
                        self._domain_introduced(domain)
                task_status.started(self.socket_path)
                await self._accept_loop(listener, None)
        finally:
            self._nursery = None
            self.listener = None
            listener.close()
            owned.unlink()

    async def _accept_loop(self, listener: socket.socket, domid: int | None) -> None:
        async with trio.open_nursery() as clients:
            while True:
                await trio.lowlevel.wait_readable(listener)
                await self.introspection.wait_open(None)
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno not in _RESOURCE_ERRNOS:
                        raise
                    # Out of fds: existing clients go on; retry once some are closed.
                    self.engine.log.append(f"accept on {self.socket_path}: {exc}")
                    await trio.sleep(ACCEPT_RETRY_DELAY)
                    continue
                if domid is None:
                    # Registered before this task yields: a live update or a freeze that
                    # starts now must see (and hand over) the client it has just accepted.
                    link = self._attach(sock, self.engine.connect_socket(sock.fileno()))
                    clients.start_soon(self._serve_accepted, link)
                else:
                    clients.start_soon(self._serve, sock, domid)

    async def _serve_accepted(self, link: _Link) -> None:
        with link.sock:
            await self._run_link(link)

    async def _serve(self, sock: socket.socket, domid: int) -> None:
        with sock:
            # A ring has one user at a time: later clients wait for the current one to leave.
            async with self._domain_locks.setdefault(domid, trio.Lock()):
                conn = self.engine.domain_connection(domid)
                if conn is not None:
                    await self.serve_connection(sock, conn)

    def client_sockets(self) -> dict[Connection, socket.socket]:
        """The socket currently attached to each served connection."""
        return {conn: link.sock for conn, link in self._links.items()}

    def adopt(self, sock: socket.socket, conn: Connection) -> None:
        """Serve an inherited, connected socket for ``conn`` (a domain's: as its client)."""
        if self._nursery is None:
            raise RuntimeError("adopt() needs a running daemon")
        if conn.kind is ConnType.SOCKET:
            self._nursery.start_soon(self._serve_adopted, sock, conn)
        else:
            self._nursery.start_soon(self._serve, sock, conn.domid)

    async def _serve_adopted(self, sock: socket.socket, conn: Connection) -> None:
        with sock:
            await self.serve_connection(sock, conn)

    async def serve_connection(self, sock: socket.socket, conn: Connection) -> None:
        """Serve an engine connection over a connected socket until either side ends it.

        Used for accepted clients, and for adopting a socket connection of a restored
        engine (for instance one inherited across a live update). A socket connection is
        removed from the engine afterwards; a domain's connection stays.
        """
        await self._run_link(self._attach(sock, conn))

    def _attach(self, sock: socket.socket, conn: Connection) -> _Link:
        sock.setblocking(False)
        link = _Link(sock, conn)
        self._links[conn] = link
        return link

    async def _run_link(self, link: _Link) -> None:
        conn = link.conn
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, link)
                await self._read_loop(link)
                nursery.cancel_scope.cancel()
        finally:
            del self._links[conn]
            if conn.kind is ConnType.SOCKET:
                # Kept until a freeze ends: the image is the state of the freeze's instant.
                self.introspection.after_freeze(conn, lambda: self.engine.disconnect(conn))
            elif conn.broken:
                # C stops using a ring that broke the protocol; the stand-in resets it.
                conn.broken = False
                conn.decoder = type(conn.decoder)()

    async def _read_loop(self, link: _Link) -> None:
        engine, conn, sock = self.engine, link.conn, link.sock
        # Output queued while no client was attached (a domain connection) goes out first.
        await self.introspection.wait_open(conn)
        self._pump(link)
        while not (conn.broken or link.dead):
            if not engine.wants_input(conn):
                await link.input_ready.wait()
                continue
            await trio.lowlevel.wait_readable(sock)
            await self.introspection.wait_open(conn)
            try:
                data = sock.recv(READ_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            self._active = conn
            try:
                engine.receive(conn, data)
            finally:
                self._active = None
            self._pump(link)

    def _pump(self, link: _Link) -> None:
        """Send what the socket takes now; hand the rest to the writer task."""
        if not self._send_available(link):
            link.output_ready.set()

    def _send_available(self, link: _Link) -> bool:
        """Send without blocking, letting the engine go on with buffered requests.

        True once everything is sent, False if the socket is full (or gone).
        """
        conn = link.conn
        while True:
            while chunk := conn.output_chunk():
                try:
                    sent = link.sock.send(chunk)
                except BlockingIOError:
                    return False
                except OSError:
                    link.dead = True
                    link.input_ready.set()
                    return False
                conn.output_sent(sent)
            self._active = conn
            try:
                self.engine.process(conn)
            finally:
                self._active = None
            if not conn.output_chunk():
                return True

    async def _write_loop(self, link: _Link) -> None:
        while not link.dead:
            await link.output_ready.wait()
            await self.introspection.wait_open(link.conn)
            while not self._send_available(link) and not link.dead:
                await trio.lowlevel.wait_writable(link.sock)
                await self.introspection.wait_open(link.conn)
            link.input_ready.set()

    def _wake_writer(self, conn: Connection) -> None:
        if conn is self._active:
            return
        link = self._links.get(conn)
        if link is not None:
            link.output_ready.set()

    def _domain_introduced(self, domain: Domain) -> None:
        if self._nursery is None or domain.domid in self._domain_scopes:
            return
        path = self.domain_socket_path(domain.domid)
        try:
            listener = self.adopted_domain_listeners.pop(domain.domid, None) or _listen(path)
            listener.setblocking(False)
        except OSError as exc:
            self.engine.log.append(f"domain {domain.domid}: no endpoint at {path}: {exc}")
            return
        scope = trio.CancelScope()
        self._domain_scopes[domain.domid] = scope
        self._nursery.start_soon(self._serve_domain, domain.domid, listener, path, scope)

    def _domain_released(self, domain: Domain) -> None:
        scope = self._domain_scopes.pop(domain.domid, None)
        if scope is not None:
            scope.cancel()
        self._domain_locks.pop(domain.domid, None)

    async def _serve_domain(
        self, domid: int, listener: socket.socket, path: str, scope: trio.CancelScope
    ) -> None:
        owned = OwnedPath(path)
        with scope:
            self.domain_listeners[domid] = listener
            try:
                await self._accept_loop(listener, domid)
            finally:
                self.domain_listeners.pop(domid, None)
                listener.close()
                owned.unlink()
