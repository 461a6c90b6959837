"""A daemon serving a restored engine: pending output is sent, pending input processed."""

from __future__ import annotations

import socket

import trio

from xsmig_daemon.image.records import ConnectionData, NodeData, Record, SocketSpec
from xsmig_daemon.mockd import MockDaemon
from xsmig_daemon.store.image_state import restore_engine
from xsmig_daemon.wire.framing import MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op


async def test_adopted_socket_connection_continues_its_byte_stream() -> None:
    queued_reply = encode_message(Op.READ, 5, 0, b"value")
    half_request = encode_message(Op.READ, 6, 0, b"/kept\0")
    records: list[Record] = [
        ConnectionData(
            1,
            SocketSpec(42),
            in_data=half_request[:9],
            out_data=queued_reply[4:] + encode_message(Op.WATCH_EVENT, 0, 0, b"/kept\0tok\0"),
            out_resp_len=len(queued_reply) - 4,
        ),
        NodeData("/"),
        NodeData("/kept", b"restored"),
    ]
    engine = restore_engine(records)
    conn = engine.connections[0]
    daemon = MockDaemon("/nonexistent/socket", engine=engine)
    ours, theirs = socket.socketpair()
    with ours, trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon.serve_connection, theirs, conn)
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
            await stream.send_all(half_request[9:])
            received = b""
            expected_tail = encode_message(Op.READ, 6, 0, b"restored")
            while not received.endswith(expected_tail):
                received += await stream.receive_some(4096)
            # The partly sent reply resumes mid-header.
            assert received.startswith(queued_reply[4:])
            decoder = MessageDecoder()
            decoder.feed(received[len(queued_reply) - 4 :])
            messages = list(decoder.messages())
            assert [(m.op, m.payload) for m in messages] == [
                (Op.WATCH_EVENT, b"/kept\0tok\0"),
                (Op.READ, b"restored"),
            ]
            nursery.cancel_scope.cancel()
