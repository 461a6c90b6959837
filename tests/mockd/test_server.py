"""The trio server: serving, pipelining, domain stand-in endpoints, socket lookup."""

from __future__ import annotations

import os
import struct

from peerlib import settled, wait_until_async

from xsmig_daemon.mockd import MockDaemon, default_socket_path
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

from .trio_client import TrioClient, body


def test_default_socket_path() -> None:
    assert default_socket_path({"XENSTORED_PATH": "/p/s"}) == "/p/s"
    assert default_socket_path({"XENSTORED_RUNDIR": "/r"}) == "/r/socket"
    assert default_socket_path({}) == "/var/run/xenstored/socket"


async def test_basic_session(mock_daemon: MockDaemon) -> None:
    client = await TrioClient.connect(mock_daemon.socket_path)
    assert (await client.call(Op.WRITE, "/a", value=b"1")).payload == b"OK\0"
    assert (await client.call(Op.READ, "/a")).payload == b"1"
    await client.aclose()


async def test_pipelined_requests_in_one_send(mock_daemon: MockDaemon) -> None:
    client = await TrioClient.connect(mock_daemon.socket_path)
    data = b"".join(encode_message(Op.GET_DOMAIN_PATH, n, 0, b"%d\0" % n) for n in range(1, 33))
    await client.stream.send_all(data)
    replies = [await client.reply() for _ in range(32)]
    assert [r.req_id for r in replies] == list(range(1, 33))
    assert replies[4].payload == b"/local/domain/5\0"
    await client.aclose()


async def test_watch_event_reaches_another_client(mock_daemon: MockDaemon) -> None:
    watcher = await TrioClient.connect(mock_daemon.socket_path)
    writer = await TrioClient.connect(mock_daemon.socket_path)
    await watcher.call(Op.WATCH, "/w", "tok")
    assert (await watcher.receive()).payload == b"/w\0tok\0"
    await writer.call(Op.WRITE, "/w/x", value=b"")
    event = await watcher.receive()
    assert (event.op, event.payload) == (Op.WATCH_EVENT, b"/w/x\0tok\0")
    await watcher.aclose()
    await writer.aclose()


async def test_disconnect_drops_watches(mock_daemon: MockDaemon) -> None:
    client = await TrioClient.connect(mock_daemon.socket_path)
    await client.call(Op.WATCH, "/gone", "t")
    await client.aclose()
    await wait_until_async(lambda: not mock_daemon.engine.connections, 5, "the connection's end")


async def test_domain_endpoint_acts_as_the_domain(mock_daemon: MockDaemon) -> None:
    dom0 = await TrioClient.connect(mock_daemon.socket_path)
    await dom0.call(Op.WRITE, "/local/domain/4", value=b"")
    await dom0.call(Op.SET_PERMS, "/local/domain/4", "n4")
    await dom0.call(Op.WRITE, "/secret", value=b"")
    assert (await dom0.call(Op.INTRODUCE, "4", "100", "9")).payload == b"OK\0"
    endpoint = mock_daemon.domain_socket_path(4)
    assert endpoint == os.path.join(mock_daemon.rundir, "domain", "4")
    await wait_until_async(lambda: os.path.exists(endpoint), 5, "the domain's endpoint")
    guest = await TrioClient.connect(endpoint)
    assert (await guest.call(Op.WRITE, "name", value=b"vm4")).payload == b"OK\0"
    assert (await dom0.call(Op.READ, "/local/domain/4/name")).payload == b"vm4"
    assert (await guest.call(Op.READ, "/secret")).payload == b"EACCES\0"
    assert (await guest.call(Op.INTRODUCE, "5", "1", "1")).payload == b"EACCES\0"
    # A second client on the same ring waits until the first one has left.
    second = await TrioClient.connect(endpoint)
    second_request = await second.send(Op.GET_DOMAIN_PATH, b"4\0")
    await settled()  # the daemon has done all it will with the request for now
    assert second.unread() == 0, "the second client was served while the first was attached"
    # The domain's state outlives its client.
    await guest.call(Op.WATCH, "name", "t")
    await guest.aclose()
    reply = await second.receive()
    assert (reply.req_id, reply.payload) == (second_request, b"/local/domain/4\0")
    await second.aclose()
    # RELEASE closes the endpoint.
    assert (await dom0.call(Op.RELEASE, "4")).payload == b"OK\0"
    await wait_until_async(lambda: not os.path.exists(endpoint), 5, "the endpoint's removal")
    assert (await dom0.call(Op.IS_DOMAIN_INTRODUCED, "4")).payload == b"F\0"
    await dom0.aclose()


async def test_output_queued_for_a_detached_domain_is_delivered_on_attach(
    mock_daemon: MockDaemon,
) -> None:
    dom0 = await TrioClient.connect(mock_daemon.socket_path)
    await dom0.call(Op.INTRODUCE, "6", "1", "1")
    await dom0.call(Op.SET_PERMS, "@introduceDomain", "n0", "r6")
    endpoint = mock_daemon.domain_socket_path(6)
    await wait_until_async(lambda: os.path.exists(endpoint), 5, "the domain's endpoint")
    guest = await TrioClient.connect(endpoint)
    await guest.call(Op.WATCH, "@introduceDomain", "in")
    assert (await guest.receive()).payload == b"@introduceDomain\0in\0"
    await guest.aclose()
    await dom0.call(Op.INTRODUCE, "7", "1", "1")
    guest = await TrioClient.connect(endpoint)
    event = await guest.receive()
    assert (event.op, event.payload) == (Op.WATCH_EVENT, b"@introduceDomain\0in\0")
    assert (await guest.call(Op.GET_DOMAIN_PATH, "6")).payload == b"/local/domain/6\0"
    await guest.aclose()
    await dom0.aclose()


async def test_request_body_helper() -> None:
    assert body("a", "b", value=b"v") == b"a\0b\0v"


async def test_a_domain_client_breaking_the_protocol_is_closed_and_the_ring_reset(
    mock_daemon: MockDaemon,
) -> None:
    dom0 = await TrioClient.connect(mock_daemon.socket_path)
    await dom0.call(Op.INTRODUCE, "8", "1", "1")
    await dom0.call(Op.WRITE, "/w", value=b"")
    await dom0.call(Op.SET_PERMS, "/w", "n0", "r8")
    endpoint = mock_daemon.domain_socket_path(8)
    guest = await TrioClient.connect(endpoint)
    await guest.call(Op.WATCH, "/w", "kept")
    assert (await guest.receive()).payload == b"/w\0kept\0"
    await guest.stream.send_all(struct.pack("<IIII", Op.READ, 1, 0, 5000))
    assert await guest.closed_by_peer()
    # The domain's connection and its watch survive; a new client can attach.
    guest = await TrioClient.connect(endpoint)
    assert (await guest.call(Op.GET_DOMAIN_PATH, "8")).payload == b"/local/domain/8\0"
    await dom0.call(Op.WRITE, "/w", value=b"new")
    event = await guest.receive()
    assert (event.op, event.payload) == (Op.WATCH_EVENT, b"/w\0kept\0")
    await guest.aclose()
    await dom0.aclose()
