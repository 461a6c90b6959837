"""The async client against a scripted fake daemon on a socketpair (no real xenstored)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio

from xsmig_daemon.client import (
    ClientProtocolError,
    ClientTimeoutError,
    DaemonGoneError,
    Request,
    TransactionConflictError,
    WatchEvent,
    Xenstore,
    XenstoreError,
    open_connection,
)
from xsmig_daemon.client.xenstore import parse_directory_part
from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op


class FakeDaemon:
    """The server end: reads whole requests, sends whatever the test script says."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = MessageDecoder()
        self.received: list[Message] = []

    async def requests(self, count: int) -> list[Message]:
        """Wait until ``count`` more requests have arrived; returns them."""
        start = len(self.received)
        while len(self.received) < start + count:
            message = self.decoder.next_message()
            if message is not None:
                self.received.append(message)
                continue
            chunk = await self.stream.receive_some(65536)
            assert chunk, "client closed the connection"
            self.decoder.feed(bytes(chunk))
        return self.received[start:]

    async def reply(self, request: Message, payload: bytes, op: int | None = None) -> None:
        out = request.op if op is None else op
        await self.stream.send_all(encode_message(out, request.req_id, request.tx_id, payload))

    async def event(self, path: str, token: str) -> None:
        body = path.encode() + b"\0" + token.encode() + b"\0"
        await self.stream.send_all(encode_message(Op.WATCH_EVENT, 0, 0, body))


Script = Callable[[FakeDaemon], Awaitable[None]]


@asynccontextmanager
async def client_with(script: Script, *, timeout: float = 2.0) -> AsyncIterator[Xenstore]:
    left, right = trio.socket.socketpair()
    server = FakeDaemon(trio.SocketStream(right))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, server)
        async with open_connection(
            trio.SocketStream(left), name="fake", timeout=timeout, event_buffer=8
        ) as conn:
            yield Xenstore(conn)
        nursery.cancel_scope.cancel()


async def test_pipelined_requests_match_replies_sent_in_reverse_order() -> None:
    seen: list[list[Message]] = []

    async def script(server: FakeDaemon) -> None:
        batch = await server.requests(3)
        seen.append(batch)
        for request in reversed(batch):
            await server.reply(request, b"value of " + request.payload.rstrip(b"\0"))
        await trio.sleep_forever()

    async with client_with(script) as xs:
        handles = await xs.conn.submit_many(
            Request(Op.READ, path.encode() + b"\0") for path in ("/a", "/b", "/c")
        )
        assert xs.conn.in_flight == 3
        replies = [await handle.payload() for handle in handles]
    assert replies == [b"value of /a", b"value of /b", b"value of /c"]
    # All three were on the wire before the first reply: that is pipelining.
    assert [m.op for m in seen[0]] == [Op.READ] * 3
    assert len({m.req_id for m in seen[0]}) == 3


async def test_watch_events_interleaved_with_replies_go_to_the_event_channel() -> None:
    async def script(server: FakeDaemon) -> None:
        (watch,) = await server.requests(1)
        await server.reply(watch, b"OK\0")
        await server.event("/w", "tok")
        (read,) = await server.requests(1)
        await server.event("/w/x", "tok")
        await server.reply(read, b"42")
        await server.event("/w/y", "tok")
        await trio.sleep_forever()

    async with client_with(script) as xs:
        await xs.watch("/w", "tok")
        assert await xs.read("/w/x") == b"42"
        events = [await xs.conn.events.receive() for _ in range(3)]
    assert events == [WatchEvent("/w", "tok"), WatchEvent("/w/x", "tok"), WatchEvent("/w/y", "tok")]


async def test_error_reply_raises_with_the_error_name_and_request() -> None:
    async def script(server: FakeDaemon) -> None:
        (read,) = await server.requests(1)
        await server.reply(read, b"ENOENT\0", op=Op.ERROR)
        await trio.sleep_forever()

    async with client_with(script) as xs:
        with pytest.raises(XenstoreError) as info:
            await xs.read("/missing")
    assert info.value.name == "ENOENT"
    assert str(info.value) == "fake: READ /missing: ENOENT"


async def test_silent_daemon_times_out_instead_of_hanging() -> None:
    async def script(server: FakeDaemon) -> None:
        await server.requests(1)
        await trio.sleep_forever()

    with trio.fail_after(5):
        async with client_with(script, timeout=0.2) as xs:
            with pytest.raises(ClientTimeoutError, match=r"no reply to READ /slow within 0.2 s"):
                await xs.read("/slow")


async def test_daemon_closing_mid_request_fails_every_waiter_and_later_requests() -> None:
    async def script(server: FakeDaemon) -> None:
        await server.requests(2)
        await server.stream.aclose()

    with trio.fail_after(5):
        async with client_with(script, timeout=30) as xs:
            handles = await xs.conn.submit_many(
                [Request(Op.READ, b"/a\0"), Request(Op.READ, b"/b\0")]
            )
            for handle in handles:
                with pytest.raises(DaemonGoneError, match="closed the connection with 2 request"):
                    await handle.payload()
            with pytest.raises(DaemonGoneError):
                await xs.read("/c")


async def test_reply_with_unknown_req_id_is_a_protocol_error() -> None:
    async def script(server: FakeDaemon) -> None:
        (read,) = await server.requests(1)
        await server.stream.send_all(encode_message(Op.READ, read.req_id + 100, 0, b"x"))
        await trio.sleep_forever()

    with trio.fail_after(5):
        async with client_with(script) as xs:
            with pytest.raises(ClientProtocolError, match="matches no request"):
                await xs.read("/a")


async def test_transaction_commits_with_t_and_reports_eagain_as_conflict() -> None:
    async def script(server: FakeDaemon) -> None:
        for answer in (b"OK\0", b"EAGAIN\0"):
            (start,) = await server.requests(1)
            await server.reply(start, b"7\0")
            (write,) = await server.requests(1)
            assert write.tx_id == 7
            await server.reply(write, b"OK\0")
            (end,) = await server.requests(1)
            assert (end.tx_id, end.payload) == (7, b"T\0")
            await server.reply(end, answer, op=Op.ERROR if answer != b"OK\0" else None)
        (start,) = await server.requests(1)
        await server.reply(start, b"8\0")
        (end,) = await server.requests(1)
        assert (end.tx_id, end.payload) == (8, b"F\0")
        await server.reply(end, b"OK\0")
        await trio.sleep_forever()

    async with client_with(script) as xs:
        async with xs.transaction() as tx:
            await xs.write("/a", b"1", tx)
        with pytest.raises(TransactionConflictError):
            async with xs.transaction() as tx:
                await xs.write("/a", b"2", tx)
        with pytest.raises(RuntimeError, match="boom"):
            async with xs.transaction():
                raise RuntimeError("boom")


def test_directory_part_reply_parsing() -> None:
    assert parse_directory_part(b"7\0a\0b\0") == (7, ["a", "b"], False)
    assert parse_directory_part(b"7\0a\0b\0\0") == (7, ["a", "b"], True)
    assert parse_directory_part(b"9\0\0") == (9, [], True)
    with pytest.raises(ClientProtocolError):
        parse_directory_part(b"x\0a\0")
