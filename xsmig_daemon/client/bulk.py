"""Bulk pipelining over several connections: many requests per send, many replies per read.

``Connection`` (connection.py) costs a handle, an event and a task switch per reply; a walk
of 100,000 nodes sends 300,000 requests, so the exporter's walk uses this leaner form
instead. A ``Lane`` is one connection on a plain non-blocking socket, driven by its one user
(no reader task): ``queue`` encodes a request into an outgoing buffer and returns its req_id,
``send_lanes`` sends what every lane queued, ``pump`` reads whatever has arrived without
waiting and files each reply under its req_id, ``take(req_id)`` hands a reply over (``None``:
not here yet) and ``wait_readable`` sleeps until the lane's socket has bytes. So the walk reads
only when it needs a reply, and then finds many: no wake-up per reply or per receive.

Why several connections: C xenstored serves at most one request per connection per round
of its poll loop, and each round also scans every domain connection (docs/export.md, "Wire
speed"); requests spread over N lanes get N served per round.

Every wait is bounded by ``timeout``; a lane whose daemon went away or sent garbage fails
every later call with the one-line ``ClientError`` that ended it.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ..wire.batch import ReplySplitter, node_messages, path_message
from ..wire.framing import ProtocolError
from ..wire.ops import Op
from .connection import DEFAULT_TIMEOUT, connect_unix_stream
from .errors import ClientError, ClientProtocolError, ClientTimeoutError, DaemonGoneError

_RECEIVE_SIZE = 1 << 18
_REQ_ID_LIMIT = 1 << 32

Reply = tuple[int, bytes]


class Lane:
    """One connection of a bulk walk; see the module doc."""

    def __init__(self, sock: socket.socket, *, name: str, timeout: float) -> None:
        sock.setblocking(False)
        self.name = name
        self.timeout = timeout
        self.sock = sock
        self._splitter = ReplySplitter()
        self._replies: dict[int, Reply] = {}
        self._outgoing: list[bytes] = []
        self._unsent = memoryview(b"")
        self._next_id = 1
        #: Replies to requests below this req_id were given up (``forget``): dropped.
        self._floor = 0
        self._awaited = 0
        self._failure: ClientError | None = None

    @property
    def in_flight(self) -> int:
        """Requests sent or queued whose reply has not been taken."""
        return self._awaited

    def queue(self, op: Op, path_arg: bytes, tx_id: int = 0) -> int:
        """Queue one request (payload ``path_arg``); returns its req_id."""
        req_id = self._next_id
        if req_id + 1 >= _REQ_ID_LIMIT:
            self._next_id, self._floor = 1, 0
        else:
            self._next_id = req_id + 1
        self._outgoing.append(path_message(op, req_id, tx_id, path_arg))
        self._awaited += 1
        return req_id

    def queue_node(self, path_arg: bytes, tx_id: int = 0) -> int:
        """Queue GET_PERMS, READ and DIRECTORY of one path (``path_arg``: path and NUL) with
        consecutive req_ids; returns the first."""
        req_id = self._next_id
        if req_id + 3 >= _REQ_ID_LIMIT:
            req_id, self._floor = 1, 0
        self._next_id = req_id + 3
        self._outgoing.append(node_messages(req_id, tx_id, path_arg))
        self._awaited += 3
        return req_id

    def send_some(self) -> bool:
        """Send what the socket takes now; True once nothing queued is left."""
        self._check()
        if self._outgoing:
            self._unsent = memoryview(bytes(self._unsent) + b"".join(self._outgoing))
            self._outgoing.clear()
        while self._unsent:
            try:
                sent = self.sock.send(self._unsent)
            except BlockingIOError:
                return False
            except OSError as exc:
                raise self._fail(
                    DaemonGoneError(f"{self.name}: daemon went away while sending ({exc})")
                ) from None
            self._unsent = self._unsent[sent:]
        return True

    def pump(self) -> int:
        """Read and file every reply that has arrived, without waiting; returns how many."""
        self._check()
        filed = 0
        while True:
            try:
                chunk = self.sock.recv(_RECEIVE_SIZE)
            except BlockingIOError:
                return filed
            except OSError as exc:
                gone = DaemonGoneError(f"{self.name}: connection reset ({exc})")
                raise self._fail(gone) from None
            if not chunk:
                raise self._fail(
                    DaemonGoneError(
                        f"{self.name}: daemon closed the connection with {self._awaited} "
                        "request(s) in flight"
                    )
                )
            filed += self._file(chunk)
            if len(chunk) < _RECEIVE_SIZE:
                return filed  # drained: spare the syscall that would say so

    async def wait_readable(self, what: str) -> None:
        """Sleep until the socket has bytes (or the timeout: ``ClientTimeoutError``)."""
        try:
            with trio.fail_after(self.timeout):
                await trio.lowlevel.wait_readable(self.sock)
        except trio.TooSlowError:
            raise self._fail(
                ClientTimeoutError(f"{self.name}: no reply to {what} within {self.timeout:g} s")
            ) from None

    def take(self, req_id: int) -> Reply | None:
        """The reply ``(op, payload)`` to ``req_id``, removed; ``None`` if not here yet."""
        reply = self._replies.pop(req_id, None)
        if reply is None:
            self._check()
        else:
            self._awaited -= 1
        return reply

    def take_pair(self, req_id: int) -> tuple[Reply, Reply] | None:
        """The replies to ``req_id`` and ``req_id + 1``, removed, once both are here."""
        replies = self._replies
        if req_id in replies and req_id + 1 in replies:
            self._awaited -= 2
            return replies.pop(req_id), replies.pop(req_id + 1)
        self._check()
        return None

    def has(self, req_id: int) -> bool:
        return req_id in self._replies

    def forget(self) -> None:
        """Give up every reply not taken yet, arrived or to come (an abandoned walk's)."""
        self._replies.clear()
        self._floor = self._next_id
        self._awaited = 0

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _fail(self, error: ClientError) -> ClientError:
        if self._failure is None:
            self._failure = error
        return self._failure

    def _file(self, chunk: bytes) -> int:
        try:
            replies = self._splitter.feed(chunk)
        except ProtocolError as exc:
            raise self._fail(ClientProtocolError(f"{self.name}: {exc}")) from None
        store, floor = self._replies, self._floor
        for op, req_id, payload in replies:
            if op == Op.WATCH_EVENT:
                raise self._fail(
                    ClientProtocolError(f"{self.name}: a watch event on a walk connection")
                )
            if req_id >= floor:
                store[req_id] = (op, payload)
        return len(replies)


async def send_lanes(lanes: list[Lane]) -> None:
    """Send what every lane queued. A lane whose socket is full waits until it drains, and
    meanwhile every lane is read: a daemon that bounds its output (the mock, like C for
    rings) stops reading a client that does not read its replies."""
    blocked = [lane for lane in lanes if not lane.send_some()]
    if not blocked:
        return
    timeout = blocked[0].timeout
    try:
        with trio.fail_after(timeout):
            while blocked:
                for lane in lanes:
                    lane.pump()
                await _any_ready(blocked, lanes)
                blocked = [lane for lane in blocked if not lane.send_some()]
    except trio.TooSlowError:
        raise ClientTimeoutError(
            f"{blocked[0].name}: could not send within {timeout:g} s"
        ) from None


async def _any_ready(writers: list[Lane], readers: list[Lane]) -> None:
    """Until one of ``writers`` can take bytes or one of ``readers`` has some."""
    async with trio.open_nursery() as nursery:

        async def writable(sock: socket.socket) -> None:
            await trio.lowlevel.wait_writable(sock)
            nursery.cancel_scope.cancel()

        async def readable(sock: socket.socket) -> None:
            await trio.lowlevel.wait_readable(sock)
            nursery.cancel_scope.cancel()

        for lane in writers:
            nursery.start_soon(writable, lane.sock)
        for lane in readers:
            nursery.start_soon(readable, lane.sock)


@asynccontextmanager
async def open_lanes(
    path: str, count: int, *, timeout: float = DEFAULT_TIMEOUT
) -> AsyncIterator[list[Lane]]:
    """``count`` connections to the daemon at ``path``; closed when the block ends."""
    lanes: list[Lane] = []
    try:
        for index in range(max(1, count)):
            stream = await connect_unix_stream(path, timeout)
            sock = socket.socket(fileno=stream.socket.detach())
            lanes.append(Lane(sock, name=f"{path} (lane {index + 1})", timeout=timeout))
        yield lanes
    finally:
        for lane in lanes:
            lane.sock.close()
