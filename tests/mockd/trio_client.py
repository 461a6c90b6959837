"""A tiny trio xenstore client for the mock's tests: raw streams, every wait bounded."""

from __future__ import annotations

import trio
from wireclient import unread_bytes

from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op

TIMEOUT = 5.0


def body(*args: str | bytes, value: bytes | None = None) -> bytes:
    out = b"".join((a.encode() if isinstance(a, str) else a) + b"\0" for a in args)
    return out if value is None else out + value


class TrioClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = MessageDecoder()
        self.events: list[Message] = []
        self._req = 0

    @classmethod
    async def connect(cls, path: str) -> TrioClient:
        with trio.fail_after(TIMEOUT):
            return cls(await trio.open_unix_socket(path))

    async def send(self, op: Op, payload: bytes = b"", tx: int = 0) -> int:
        self._req += 1
        with trio.fail_after(TIMEOUT):
            await self.stream.send_all(encode_message(op, self._req, tx, payload))
        return self._req

    async def receive(self) -> Message:
        with trio.fail_after(TIMEOUT):
            while (message := self.decoder.next_message()) is None:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("daemon closed the connection")
                self.decoder.feed(data)
        return message

    async def reply(self) -> Message:
        while (message := await self.receive()).op == Op.WATCH_EVENT:
            self.events.append(message)
        return message

    async def call(
        self, op: Op, *args: str | bytes, value: bytes | None = None, tx: int = 0
    ) -> Message:
        req = await self.send(op, body(*args, value=value), tx)
        message = await self.reply()
        assert message.req_id == req
        return message

    async def closed_by_peer(self) -> bool:
        """True if the daemon closes the connection (EOF) within the timeout."""
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return True
                if not data:
                    return True
                self.decoder.feed(data)

    def unread(self) -> int:
        """Bytes the daemon sent that this client has not received (FIONREAD), without
        waiting: with ``peerlib.settled`` it shows that nothing was answered."""
        return unread_bytes(self.stream.socket.fileno())

    async def aclose(self) -> None:
        await self.stream.aclose()
