"""Drive ``store.Engine`` with plain bytes: an engine-side client per connection."""

from __future__ import annotations

from xsmig_daemon.store import Connection, Engine
from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op


class EngineClient:
    """Sends requests into an engine connection and splits its output into replies/events."""

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine = engine
        self.conn = conn
        self._decoder = MessageDecoder()
        self._next_req = 1
        self.replies: list[Message] = []
        self.events: list[tuple[str, str]] = []

    def send(self, op: Op, *args: str | bytes, value: bytes | None = None, tx: int = 0) -> int:
        body = b"".join((a.encode() if isinstance(a, str) else a) + b"\0" for a in args)
        if value is not None:
            body += value
        req = self._next_req
        self._next_req += 1
        self.engine.receive(self.conn, encode_message(op, req, tx, body))
        return req

    def drain(self) -> None:
        while chunk := self.conn.output_chunk():
            self._decoder.feed(chunk)
            self.conn.output_sent(len(chunk))
        for message in self._decoder.messages():
            if message.op == Op.WATCH_EVENT:
                path, token = message.payload.split(b"\0")[:2]
                self.events.append((path.decode(), token.decode()))
            else:
                self.replies.append(message)

    def call(self, op: Op, *args: str | bytes, value: bytes | None = None, tx: int = 0) -> Message:
        req = self.send(op, *args, value=value, tx=tx)
        self.drain()
        reply = self.replies.pop(0)
        assert reply.req_id == req
        assert reply.tx_id == tx
        return reply

    def ok(self, op: Op, *args: str | bytes, value: bytes | None = None, tx: int = 0) -> bytes:
        reply = self.call(op, *args, value=value, tx=tx)
        assert reply.op == op, f"{op.name} {args}: {reply.payload!r}"
        return reply.payload

    def error(self, op: Op, *args: str | bytes, value: bytes | None = None, tx: int = 0) -> str:
        reply = self.call(op, *args, value=value, tx=tx)
        assert reply.op == Op.ERROR, f"{op.name} {args} succeeded: {reply.payload!r}"
        return reply.payload.rstrip(b"\0").decode()

    def write(self, path: str, value: str | bytes, tx: int = 0) -> None:
        data = value.encode() if isinstance(value, str) else value
        assert self.ok(Op.WRITE, path, value=data, tx=tx) == b"OK\0"

    def read(self, path: str, tx: int = 0) -> bytes:
        return self.ok(Op.READ, path, tx=tx)

    def take_events(self) -> list[tuple[str, str]]:
        self.drain()
        taken, self.events = self.events, []
        return taken

    def start(self) -> int:
        return int(self.ok(Op.TRANSACTION_START, "").rstrip(b"\0"))
