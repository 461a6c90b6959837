"""A blocking xenstore wire client over unix sockets, for tests and benchmarks.

Frames with the project's own ``wire/framing.py``; every wait is bounded, so a daemon that
stops answering fails the test instead of hanging it.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Protocol

from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op

#: Seconds any wait for a daemon may take before a test fails instead of hanging.
DEFAULT_TIMEOUT = 10.0
_CONNECT_RETRY = 0.02


class PeerError(RuntimeError):
    """A daemon or one of its tools did not behave as a test peer must."""


def payload(*strings: str | bytes, value: bytes | None = None) -> bytes:
    """NUL-terminated arguments, optionally followed by a raw (unterminated) value."""
    out = b"".join((s.encode() if isinstance(s, str) else s) + b"\0" for s in strings)
    return out if value is None else out + value


def _connect_unix(path: str, timeout: float) -> socket.socket:
    """Connect, retrying while the listen backlog is full (a non-blocking AF_UNIX connect
    fails with EAGAIN then instead of waiting)."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise PeerError(f"{path}: listen backlog stayed full for {timeout} s") from None
            time.sleep(_CONNECT_RETRY)
            continue
        except OSError:
            sock.close()
            raise
        return sock


class ByteStream(Protocol):
    """Where a WireClient's bytes go: a socket, or a guest's shared ring (ringclient.py)."""

    def sendall(self, data: bytes) -> None: ...

    def recv_within(self, timeout: float) -> bytes | None:
        """Some bytes; ``b""`` once the peer closed; None if nothing came within ``timeout``."""

    def close(self) -> None: ...


class SocketStream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_within(self, timeout: float) -> bytes | None:
        self.sock.settimeout(max(timeout, 1e-6))
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


class WireClient:
    """A blocking xenstore client on a byte stream, for scripted sessions.

    Replies and watch events are separated: ``reply`` returns the next non-event message
    and keeps events in ``events`` in arrival order. Every wait is bounded by ``timeout``.
    ``name`` appears in error messages.
    """

    def __init__(self, stream: ByteStream, name: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.stream = stream
        self.name = name
        self.timeout = timeout
        self._decoder = MessageDecoder()
        self._next_req_id = 1
        self.events: deque[Message] = deque()

    @classmethod
    def connect(cls, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        return cls(SocketStream(_connect_unix(str(path), timeout)), str(path), timeout)

    @classmethod
    def on_socket(
        cls, sock: socket.socket, name: str, timeout: float = DEFAULT_TIMEOUT
    ) -> WireClient:
        return cls(SocketStream(sock), name, timeout)

    def __enter__(self) -> WireClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.stream.close()

    def send(
        self, op: Op | int, body: bytes = b"", *, tx_id: int = 0, req_id: int | None = None
    ) -> int:
        """Send one request; returns its req_id (allocated if not given)."""
        if req_id is None:
            req_id = self._next_req_id
            self._next_req_id += 1
        self.stream.sendall(encode_message(int(op), req_id, tx_id, body))
        return req_id

    def send_raw(self, data: bytes) -> None:
        self.stream.sendall(data)

    def receive(self, timeout: float | None = None) -> Message:
        """The next message of any type; raises PeerError on EOF or timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (message := self._decoder.next_message()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(f"no message from {self.name} within the timeout")
            chunk = self.stream.recv_within(remaining)
            if chunk is None:
                raise PeerError(f"no message from {self.name} within the timeout")
            if not chunk:
                raise PeerError(f"{self.name} closed the connection")
            self._decoder.feed(chunk)
        return message

    def reply(self, timeout: float | None = None) -> Message:
        """The next reply, setting watch events aside in ``events``."""
        while (message := self.receive(timeout)).op == Op.WATCH_EVENT:
            self.events.append(message)
        return message

    def request(self, op: Op | int, body: bytes = b"", *, tx_id: int = 0) -> Message:
        self.send(op, body, tx_id=tx_id)
        return self.reply()

    def call(self, op: Op | int, *strings: str | bytes, tx_id: int = 0) -> Message:
        """Request with NUL-terminated string arguments."""
        return self.request(op, payload(*strings), tx_id=tx_id)

    def event(self, timeout: float | None = None) -> Message:
        """The next watch event (queued or arriving); replies in between are an error."""
        if self.events:
            return self.events.popleft()
        message = self.receive(timeout)
        if message.op != Op.WATCH_EVENT:
            raise PeerError(f"expected a watch event, got {message.describe()}")
        return message

    def is_silent(self, wait: float = 0.1) -> bool:
        """True when nothing was queued and nothing arrives within ``wait`` seconds."""
        if self.events or self._decoder.pending:
            return False
        chunk = self.stream.recv_within(wait)
        if chunk is None:
            return True
        self._decoder.feed(chunk)
        return False


def unread_bytes(fd: int) -> int:
    """Bytes waiting on socket ``fd`` that nobody has received yet (FIONREAD), at once."""
    raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4)
    count: int = struct.unpack("i", raw)[0]
    return count


def ok(client: WireClient, op: Op, *args: str | bytes, tx_id: int = 0) -> bytes:
    """``op``'s reply payload; fails the test on an error reply."""
    reply = client.call(op, *args, tx_id=tx_id)
    assert reply.op == op, f"{op.name} {args}: {reply.payload!r}"
    data: bytes = reply.payload
    return data


def write(client: WireClient, path: str, value: bytes, tx_id: int = 0) -> None:
    """WRITE ``path``; fails the test on an error reply."""
    reply = client.request(Op.WRITE, payload(path, value=value), tx_id=tx_id)
    assert reply.op == Op.WRITE, f"WRITE {path}: {reply.payload!r}"
