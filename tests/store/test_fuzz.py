"""Random requests and random bytes never make the engine raise or lose a reply."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xsmig_daemon.store import Connection, Engine
from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op

_PATHS = st.sampled_from(
    ["/", "/a", "/a/b", "a", "@releaseDomain", "/a/", "//", "", "/local/domain/3/x", "1"]
)
_ARG = st.one_of(_PATHS, st.sampled_from(["0", "3", "T", "F", "n0", "r3", "b7", "x"]))
_OPS = st.sampled_from([op for op in Op if op not in (Op.WATCH_EVENT, Op.ERROR)])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    op = draw(_OPS)
    args = draw(st.lists(_ARG, max_size=4))
    payload = b"".join(a.encode() + b"\0" for a in args)
    if draw(st.booleans()):
        payload += draw(st.binary(max_size=8))
    tx = draw(st.sampled_from([0, 0, 1, 2, 99]))
    return encode_message(int(op), draw(st.integers(0, 2**32 - 1)), tx, payload)


def socket_replies(engine: Engine, conn: Connection) -> list[Message]:
    decoder = MessageDecoder()
    while chunk := conn.output_chunk():
        decoder.feed(chunk)
        conn.output_sent(len(chunk))
        engine.process(conn)
    return [m for m in decoder.messages() if m.op != Op.WATCH_EVENT]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), requests()), max_size=40))
def test_every_request_gets_exactly_one_reply(script: list[tuple[int, bytes]]) -> None:
    engine = Engine()
    socket_conn = engine.connect_socket(fd=3)
    engine.introduce(3, 1)
    engine.introduce(4, 1)
    conns = [socket_conn, engine.domain_connection(3), engine.domain_connection(4)]
    expected = []
    for index, request in script:
        conn = conns[index]
        if conn is None or conn not in engine.connections:
            continue
        if conn is socket_conn:
            expected.append(int.from_bytes(request[4:8], "little"))
        engine.receive(conn, request)
    # The socket client is never released or reset, so every request of it is answered,
    # in order, with its req_id.
    assert [m.req_id for m in socket_replies(engine, socket_conn)] == expected
    assert not any("internal error" in line for line in engine.log), list(engine.log)
    assert engine.tree.check() == []


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    engine = Engine()
    conn = engine.connect_socket(fd=3)
    engine.receive(conn, data)
    socket_replies(engine, conn)
    assert not any("internal error" in line for line in engine.log), list(engine.log)
