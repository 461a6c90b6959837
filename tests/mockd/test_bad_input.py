"""Bad input never stops the daemon: each offender gets C's treatment, others are served."""

from __future__ import annotations

import struct

import trio
from peerlib import settled, wait_until_async

from xsmig_daemon.mockd import MockDaemon
from xsmig_daemon.store.connection import OUTPUT_LIMIT
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

from .trio_client import TrioClient


async def still_served(daemon: MockDaemon) -> None:
    other = await TrioClient.connect(daemon.socket_path)
    assert (await other.call(Op.WRITE, "/alive", value=b"yes")).payload == b"OK\0"
    assert (await other.call(Op.READ, "/alive")).payload == b"yes"
    await other.aclose()


async def test_length_over_4096_closes_that_connection(mock_daemon: MockDaemon) -> None:
    bad = await TrioClient.connect(mock_daemon.socket_path)
    await bad.stream.send_all(struct.pack("<IIII", Op.WRITE, 1, 0, 4097) + b"x" * 100)
    assert await bad.closed_by_peer()
    await still_served(mock_daemon)


async def test_garbage_bytes(mock_daemon: MockDaemon) -> None:
    bad = await TrioClient.connect(mock_daemon.socket_path)
    await bad.stream.send_all(b"\xde\xad\xbe\xef" * 64)
    # 0xefbeadde as a length is far over 4096: C treats the peer as broken and closes.
    assert await bad.closed_by_peer()
    await still_served(mock_daemon)


async def test_garbage_with_a_small_length_gets_enosys(mock_daemon: MockDaemon) -> None:
    bad = await TrioClient.connect(mock_daemon.socket_path)
    await bad.stream.send_all(struct.pack("<IIII", 0xABCD, 9, 0, 3) + b"xyz")
    reply = await bad.receive()
    assert (reply.op, reply.req_id, reply.payload) == (Op.ERROR, 9, b"ENOSYS\0")
    assert (await bad.call(Op.GET_DOMAIN_PATH, "1")).payload == b"/local/domain/1\0"
    await bad.aclose()
    await still_served(mock_daemon)


async def test_truncated_header_then_disconnect(mock_daemon: MockDaemon) -> None:
    bad = await TrioClient.connect(mock_daemon.socket_path)
    await bad.stream.send_all(encode_message(Op.READ, 1, 0, b"/\0")[:7])
    await bad.aclose()
    await still_served(mock_daemon)
    await wait_until_async(lambda: not mock_daemon.engine.connections, 5, "the connection's end")


async def test_invalid_paths_and_nul_inside_a_path(mock_daemon: MockDaemon) -> None:
    bad = await TrioClient.connect(mock_daemon.socket_path)
    for payload in (b"/a//b\0", b"/a/\0", b"/sp ace\0", b"/a\0b\0", b"\0", b"", b"/\xff\0"):
        reply = await bad.call(Op.READ, value=payload)
        assert (reply.op, reply.payload) == (Op.ERROR, b"EINVAL\0"), payload
    reply = await bad.call(Op.WRITE, value=b"/a\0b\0c")
    assert reply.payload == b"OK\0"  # value "b\0c" is raw data, as in C
    assert (await bad.call(Op.READ, "/a")).payload == b"b\0c"
    await bad.aclose()
    await still_served(mock_daemon)


async def test_500_clients_at_once(mock_daemon: MockDaemon) -> None:
    results: list[bytes] = []

    async def one(n: int) -> None:
        client = await TrioClient.connect(mock_daemon.socket_path)
        await client.call(Op.WRITE, f"/many/c{n}", value=str(n).encode())
        results.append((await client.call(Op.READ, f"/many/c{n}")).payload)
        await client.aclose()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(500):
                nursery.start_soon(one, n)
    assert sorted(results) == sorted(str(n).encode() for n in range(500))
    await still_served(mock_daemon)


async def test_client_that_never_reads_is_bounded(mock_daemon: MockDaemon) -> None:
    lazy = await TrioClient.connect(mock_daemon.socket_path)
    await lazy.call(Op.WRITE, "/big", value=b"x" * 4000)
    read_big = encode_message(Op.READ, 1, 0, b"/big\0")
    sent = 0

    async def flood() -> None:
        nonlocal sent
        while True:
            await lazy.stream.send_all(read_big * 16)
            sent += 16

    # The daemon stops reading the lazy client once its output is full, so our sends block:
    # then nothing in this process can move any more.
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await settled()
            nursery.cancel_scope.cancel()
    conn = next(c for c in mock_daemon.engine.connections)
    assert OUTPUT_LIMIT <= conn.output_size < OUTPUT_LIMIT + 8192
    assert len(conn.decoder.pending) < 64 * 1024
    assert sent * 4016 > OUTPUT_LIMIT  # we did try to make it answer more than that
    await still_served(mock_daemon)
    # Reading again lets the daemon go on with what it had buffered.
    first = await lazy.reply()
    assert first.payload == b"x" * 4000
    await lazy.aclose()
