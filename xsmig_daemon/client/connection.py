"""One xenstore connection on trio: pipelined requests matched by req_id, watch events apart.

Theory of operation: a background reader task (in the nursery of ``open_connection``) feeds
every received chunk to the sans-I/O ``MessageDecoder``. A reply is handed to the
``PendingReply`` registered under its req_id -- replies may arrive in any order, C just
happens to answer in order. A ``WATCH_EVENT`` goes to a bounded memory channel
(``Connection.events``): when nobody drains it the reader waits, which stops reading the
socket and so pushes back on the daemon instead of growing memory without bound.

Every wait for the daemon (sending, waiting for a reply) is bounded by ``timeout``. When the
daemon closes or resets the socket, or sends garbage, every request in flight and every later
one fails with ``DaemonGoneError`` / ``ClientProtocolError`` at once: nothing ever hangs on a
vanished daemon.
"""

from __future__ import annotations

import errno
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import trio

from ..image.records import decode_text
from ..wire.framing import Message, MessageDecoder, ProtocolError, encode_message, split_strings
from ..wire.ops import Op
from .errors import (
    ClientError,
    ClientProtocolError,
    ClientTimeoutError,
    DaemonGoneError,
    XenstoreError,
)

DEFAULT_TIMEOUT = 10.0
#: Watch events buffered before the reader stops reading the socket.
DEFAULT_EVENT_BUFFER = 1024
#: A WATCH_EVENT's payload: path, token (a daemon may add more).
WATCH_EVENT_STRINGS = 2
_RECEIVE_SIZE = 1 << 16
_CONNECT_RETRY = 0.01
_REQ_ID_LIMIT = 1 << 32


@dataclass(frozen=True, slots=True)
class WatchEvent:
    path: str
    token: str


@dataclass(frozen=True, slots=True)
class Request:
    """One request to send: op, raw payload and the transaction it belongs to (0 = none)."""

    op: Op
    payload: bytes = b""
    tx_id: int = 0

    def describe(self) -> str:
        first = self.payload.split(b"\0", 1)[0]
        argument = f" {decode_text(first)}" if first else ""
        tx = f" (tx {self.tx_id})" if self.tx_id else ""
        return f"{self.op.name}{argument}{tx}"


class PendingReply:
    """The future reply to one request that has already been sent."""

    def __init__(self, connection: Connection, request: Request, req_id: int) -> None:
        self.request = request
        self.req_id = req_id
        self._connection = connection
        self._done = trio.Event()
        self._message: Message | None = None
        self._error: ClientError | None = None

    def _resolve(self, message: Message) -> None:
        self._message = message
        self._done.set()

    def _fail(self, error: ClientError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def payload(self, timeout: float | None = None) -> bytes:
        """The reply payload; raises ``XenstoreError`` for an ERROR reply. ``timeout``: for a
        request the daemon may take longer to answer than the connection's own timeout."""
        message = await self.message(timeout)
        if message.op == Op.ERROR:
            name = decode_text(message.payload.rstrip(b"\0")) or "?"
            raise XenstoreError(name, f"{self._connection.name}: {self.request.describe()}")
        return message.payload

    async def message(self, timeout: float | None = None) -> Message:
        if not self._done.is_set():
            timeout = self._connection.timeout if timeout is None else timeout
            try:
                with trio.fail_after(timeout):
                    await self._done.wait()
            except trio.TooSlowError:
                self._connection._forget(self.req_id)
                raise ClientTimeoutError(
                    f"{self._connection.name}: no reply to {self.request.describe()} "
                    f"within {timeout:g} s"
                ) from None
        if self._error is not None:
            raise self._error
        assert self._message is not None
        return self._message


class Connection:
    """The request/reply core; use ``open_connection`` / ``connect_unix`` to get one."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        event_buffer: int = DEFAULT_EVENT_BUFFER,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self._stream = stream
        self._decoder = MessageDecoder()
        self._pending: dict[int, PendingReply] = {}
        self._req_ids = itertools.cycle(range(1, _REQ_ID_LIMIT))
        self._send_lock = trio.Lock()
        self._failure: ClientError | None = None
        self._late_ids: set[int] = set()
        self._event_send, self.events = trio.open_memory_channel[WatchEvent](event_buffer)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def submit(self, request: Request) -> PendingReply:
        """Send one request now; await the returned handle's ``payload()`` for the reply."""
        (pending,) = await self.submit_many((request,))
        return pending

    async def submit_many(self, requests: Iterable[Request]) -> list[PendingReply]:
        """Send several requests in one write (pipelining); handles in request order."""
        self._check_usable()
        handles: list[PendingReply] = []
        chunks: list[bytes] = []
        for request in requests:
            req_id = self._next_req_id()
            handle = PendingReply(self, request, req_id)
            chunks.append(encode_message(request.op, req_id, request.tx_id, request.payload))
            handles.append(handle)
        for handle in handles:
            self._pending[handle.req_id] = handle
        try:
            await self._send(b"".join(chunks), handles[0].request if handles else None)
        except BaseException:
            for handle in handles:
                self._pending.pop(handle.req_id, None)
            raise
        return handles

    async def request(self, request: Request) -> bytes:
        return await (await self.submit(request)).payload()

    async def call(self, op: Op, *args: str | bytes, tx_id: int = 0) -> bytes:
        """A request whose payload is NUL-terminated string arguments; returns the payload."""
        return await self.request(Request(op, strings_payload(args), tx_id))

    async def aclose(self) -> None:
        self._fail_all(DaemonGoneError(f"{self.name}: connection closed by the client"))
        await self._event_send.aclose()
        with trio.CancelScope(shield=True):
            await self._stream.aclose()

    # -------------------------------------------------------------- internals

    def _next_req_id(self) -> int:
        req_id = next(self._req_ids)
        while req_id in self._pending:
            req_id = next(self._req_ids)
        return req_id

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _send(self, data: bytes, first: Request | None) -> None:
        what = first.describe() if first is not None else "request"
        async with self._send_lock:
            self._check_usable()
            try:
                with trio.fail_after(self.timeout):
                    await self._stream.send_all(data)
            except trio.TooSlowError:
                # A half-written message leaves the stream unusable for everybody.
                timeout = ClientTimeoutError(
                    f"{self.name}: could not send {what} within {self.timeout:g} s"
                )
                self._fail_all(timeout)
                raise timeout from None
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                gone = DaemonGoneError(
                    f"{self.name}: daemon went away while sending {what} ({exc})"
                )
                self._fail_all(gone)
                raise gone from None

    def _forget(self, req_id: int) -> None:
        # A reply that arrives after its waiter gave up is dropped, not misrouted.
        self._pending.pop(req_id, None)
        self._late_ids.add(req_id)

    def _fail_all(self, error: ClientError) -> None:
        if self._failure is None:
            self._failure = error
        pending, self._pending = self._pending, {}
        for handle in pending.values():
            handle._fail(error)

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    chunk = await self._stream.receive_some(_RECEIVE_SIZE)
                except (trio.BrokenResourceError, OSError) as exc:
                    self._gone(f"connection reset ({exc})")
                    return
                except trio.ClosedResourceError:
                    return
                if not chunk:
                    self._gone("daemon closed the connection")
                    return
                self._decoder.feed(bytes(chunk))
                try:
                    for message in self._decoder.messages():
                        await self._dispatch(message)
                except ProtocolError as exc:
                    self._fail_all(ClientProtocolError(f"{self.name}: {exc}"))
                    return
                except ClientProtocolError as exc:
                    self._fail_all(exc)
                    return
        finally:
            self._event_send.close()

    def _gone(self, why: str) -> None:
        in_flight = len(self._pending)
        self._fail_all(DaemonGoneError(f"{self.name}: {why} with {in_flight} request(s) in flight"))

    async def _dispatch(self, message: Message) -> None:
        if message.op == Op.WATCH_EVENT:
            strings = split_strings(message.payload)
            if len(strings) < WATCH_EVENT_STRINGS:
                raise ClientProtocolError(f"{self.name}: malformed watch event {message.payload!r}")
            event = WatchEvent(decode_text(strings[0]), decode_text(strings[1]))
            with suppress(trio.ClosedResourceError):
                await self._event_send.send(event)
            return
        handle = self._pending.pop(message.req_id, None)
        if handle is None:
            if message.req_id in self._late_ids:
                self._late_ids.discard(message.req_id)
                return
            raise ClientProtocolError(
                f"{self.name}: reply {message.describe()} matches no request in flight"
            )
        handle._resolve(message)


def strings_payload(args: Sequence[str | bytes]) -> bytes:
    """NUL-terminated arguments; ``str`` is encoded like record paths (surrogateescape)."""
    parts = [(a.encode("utf-8", "surrogateescape") if isinstance(a, str) else a) for a in args]
    return b"".join(part + b"\0" for part in parts)


@asynccontextmanager
async def open_connection(
    stream: trio.abc.Stream,
    *,
    name: str,
    timeout: float = DEFAULT_TIMEOUT,
    event_buffer: int = DEFAULT_EVENT_BUFFER,
) -> AsyncIterator[Connection]:
    """Run a connection over an already connected stream; closed when the block ends."""
    connection = Connection(stream, name=name, timeout=timeout, event_buffer=event_buffer)
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection._read_loop)
        try:
            yield connection
        except BaseException as exc:
            # Re-raised below, outside the nursery: callers see the error itself, not an
            # ExceptionGroup around it.
            body_error = exc
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await connection.aclose()
    if body_error is not None:
        raise body_error


async def connect_unix_stream(path: str, timeout: float = DEFAULT_TIMEOUT) -> trio.SocketStream:
    """Connect to a daemon's unix socket; one-line ``DaemonGoneError`` if nobody listens.

    A non-blocking AF_UNIX connect to a daemon whose listen backlog is full (C xenstored's
    is small) fails with EAGAIN or leaves an unconnected socket; that is retried until
    ``timeout``, like a blocking connect would wait.
    """
    try:
        with trio.fail_after(timeout):
            while True:
                try:
                    stream = await trio.open_unix_socket(path)
                except BlockingIOError:
                    await trio.sleep(_CONNECT_RETRY)
                    continue
                try:
                    stream.socket.getpeername()
                except OSError as exc:
                    if exc.errno != errno.ENOTCONN:
                        raise
                    await stream.aclose()
                    await trio.sleep(_CONNECT_RETRY)
                    continue
                return stream
    except trio.TooSlowError:
        raise ClientTimeoutError(f"{path}: connect did not complete within {timeout:g} s") from None
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise DaemonGoneError(f"{path}: cannot connect: {reason}") from None
