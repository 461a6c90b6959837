"""Bulk pipelining over several connections: many requests per send, many replies per wake.

``Connection`` (connection.py) costs a handle, an event and a task switch per reply; a walk
of 100,000 nodes sends 300,000 requests, so the exporter's walk uses this leaner form
instead. A ``Lane`` is one connection: ``queue`` encodes a request into an outgoing buffer
and returns its req_id, ``flush`` sends everything queued in one write, a reader task files
each reply under its req_id, and ``take(req_id)`` hands it over (``None``: not here yet).
All lanes of a walk share one ``Doorbell``: a reader rings it after filing a receive's
replies, so the walk sleeps in one place whichever lane answers.

Why several connections: C xenstored serves at most one request per connection per round
of its poll loop, and each round also scans every domain connection (see docs/export.md,
"Wire speed"); requests spread over N lanes get N served per round.

Every wait is bounded by ``timeout``; a lane whose daemon went away or sent garbage fails
every later ``take`` with the one-line ``ClientError`` that ended it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from ..wire.batch import Reply, ReplySplitter, node_messages, path_message
from ..wire.framing import ProtocolError
from ..wire.ops import Op
from .connection import DEFAULT_TIMEOUT, connect_unix_stream
from .errors import ClientError, ClientProtocolError, ClientTimeoutError, DaemonGoneError

_RECEIVE_SIZE = 1 << 18
_REQ_ID_LIMIT = 1 << 32


class Doorbell:
    """One wake-up shared by the readers of several lanes.

    ``arm()`` before checking for replies, then ``wait()``: a ring after ``arm`` ends the
    wait, so no reply that arrives between the check and the wait is missed."""

    def __init__(self) -> None:
        self._event = trio.Event()
        #: Rings so far: a waiter that compares it knows whether anything arrived since.
        self.rings = 0

    def arm(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    def ring(self) -> None:
        self.rings += 1
        self._event.set()

    async def wait(self, timeout: float, what: str) -> None:
        try:
            with trio.fail_after(timeout):
                await self._event.wait()
        except trio.TooSlowError:
            raise ClientTimeoutError(f"{what}: no reply within {timeout:g} s") from None


class Lane:
    """One connection of a bulk walk; see the module doc."""

    def __init__(
        self, stream: trio.abc.Stream, bell: Doorbell, *, name: str, timeout: float
    ) -> None:
        self.name = name
        self.timeout = timeout
        self._stream = stream
        self._bell = bell
        self._splitter = ReplySplitter()
        self._replies: dict[int, tuple[int, bytes]] = {}
        self._outgoing: list[bytes] = []
        self._next_id = 1
        self._awaited = 0
        self._failure: ClientError | None = None

    @property
    def in_flight(self) -> int:
        """Requests sent or queued whose reply has not been taken."""
        return self._awaited

    def queue(self, op: Op, path_arg: bytes, tx_id: int = 0) -> int:
        """Queue one request (payload ``path_arg``); returns its req_id."""
        req_id = self._next_id
        self._next_id = req_id + 1 if req_id + 1 < _REQ_ID_LIMIT else 1
        self._outgoing.append(path_message(op, req_id, tx_id, path_arg))
        self._awaited += 1
        return req_id

    def queue_node(self, path_arg: bytes, tx_id: int = 0) -> int:
        """Queue GET_PERMS, READ and DIRECTORY of one path (``path_arg``: path and NUL) with
        consecutive req_ids; returns the first."""
        req_id = self._next_id
        if req_id + 3 >= _REQ_ID_LIMIT:
            req_id = 1
        self._next_id = req_id + 3
        self._outgoing.append(node_messages(req_id, tx_id, path_arg))
        self._awaited += 3
        return req_id

    async def flush(self) -> None:
        if not self._outgoing:
            return
        self._check()
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        try:
            with trio.fail_after(self.timeout):
                await self._stream.send_all(data)
        except trio.TooSlowError:
            raise self._fail(
                ClientTimeoutError(f"{self.name}: could not send within {self.timeout:g} s")
            ) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise self._fail(
                DaemonGoneError(f"{self.name}: daemon went away while sending ({exc})")
            ) from None

    def take(self, req_id: int) -> tuple[int, bytes] | None:
        """The reply ``(op, payload)`` to ``req_id``, removed; ``None`` if not here yet."""
        reply = self._replies.pop(req_id, None)
        if reply is None:
            self._check()
        else:
            self._awaited -= 1
        return reply

    def has(self, req_id: int) -> bool:
        return req_id in self._replies

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _fail(self, error: ClientError) -> ClientError:
        if self._failure is None:
            self._failure = error
        self._bell.ring()
        return self._failure

    def _file(self, replies: list[Reply]) -> None:
        store = self._replies
        for op, req_id, payload in replies:
            if op == Op.WATCH_EVENT:
                raise ClientProtocolError(f"{self.name}: a watch event on a walk connection")
            store[req_id] = (op, payload)

    async def _read_loop(self) -> None:
        while True:
            try:
                chunk = await self._stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, OSError) as exc:
                self._fail(DaemonGoneError(f"{self.name}: connection reset ({exc})"))
                return
            except trio.ClosedResourceError:
                return
            if not chunk:
                self._fail(
                    DaemonGoneError(
                        f"{self.name}: daemon closed the connection with {self._awaited} "
                        "request(s) in flight"
                    )
                )
                return
            try:
                self._file(self._splitter.feed(chunk))
            except ProtocolError as exc:
                self._fail(ClientProtocolError(f"{self.name}: {exc}"))
                return
            except ClientProtocolError as exc:
                self._fail(exc)
                return
            self._bell.ring()


@asynccontextmanager
async def open_lanes(
    path: str, count: int, bell: Doorbell, *, timeout: float = DEFAULT_TIMEOUT
) -> AsyncIterator[list[Lane]]:
    """``count`` connections to the daemon at ``path``, their readers running; closed (and
    the readers stopped) when the block ends."""
    async with AsyncExitStack() as stack:
        lanes = []
        for index in range(max(1, count)):
            stream = await connect_unix_stream(path, timeout)
            stack.push_async_callback(_close, stream)
            lanes.append(Lane(stream, bell, name=f"{path} (lane {index + 1})", timeout=timeout))
        nursery = await stack.enter_async_context(trio.open_nursery())
        for lane in lanes:
            nursery.start_soon(lane._read_loop)
        body_error: BaseException | None = None
        try:
            yield lanes
        except BaseException as exc:
            # Re-raised after the nursery, so callers see it, not a group around it.
            body_error = exc
        finally:
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


async def _close(stream: trio.abc.Stream) -> None:
    with trio.CancelScope(shield=True):
        await stream.aclose()
