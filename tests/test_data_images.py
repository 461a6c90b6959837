"""The real 4.17 images in tests/data still load into the real 4.17 daemon and serve what
tests/data/README.md says they hold (expected values come from make_images.py's recipe,
not from xsmig code)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from peerlib import (
    RestoreImage,
)
from wireclient import payload

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

DATA = Path(__file__).resolve().parent / "data"
LU_OK = encode_message(Op.CONTROL, 0, 0, b"OK\0")
IMAGES = (
    "pending_input.img",
    "pending_output.img",
    "many_watches.img",
    "domains5.img",
    "big_tree.img",
    "ring_pending.img",
    "basic.img",
    "watches.img",
    "domains.img",
)


@pytest.mark.parametrize("name", IMAGES)
def test_every_image_is_a_4_17_image_the_daemon_loads(
    name: str, restored_xenstored: RestoreImage
) -> None:
    data = (DATA / name).read_bytes()
    assert data[:16] == b"xenstore" + bytes.fromhex("00000001 00000000")
    daemon = restored_xenstored(data)
    with daemon.connect() as client:
        assert client.call(Op.READ, "/tool/xenstored").payload == b""


def test_pending_input_runs_after_restore(restored_xenstored: RestoreImage) -> None:
    daemon = restored_xenstored((DATA / "pending_input.img").read_bytes())
    fds = list(daemon.conn_peers)  # image order: holder, parked, LU requester, partial
    holder, parked, requester, partial = (daemon.peer_client(fd) for fd in fds)
    assert requester.receive().encode() == LU_OK
    started = parked.receive()
    assert (started.op, started.req_id) == (Op.TRANSACTION_START, 42)
    rest = encode_message(Op.WRITE, 77, 0, payload("/half", value=b"0123456789"))[21:]
    parked.send_raw(rest)
    assert parked.reply().encode() == encode_message(Op.WRITE, 77, 0, b"OK\0")
    partial.send_raw(encode_message(Op.READ, 5, 0, payload("/local"))[7:])
    assert partial.reply().encode() == encode_message(Op.READ, 5, 0, b"")
    # The forced update dropped the open transaction and what it wrote.
    assert holder.call(Op.READ, "/held/by-tx").payload == b"ENOENT\0"
    assert holder.call(Op.TRANSACTION_END, "F", tx_id=1).payload == b"ENOENT\0"


def test_pending_output_is_delivered_after_restore(restored_xenstored: RestoreImage) -> None:
    daemon = restored_xenstored((DATA / "pending_output.img").read_bytes())
    stalled_fd, requester_fd = daemon.conn_peers
    assert daemon.peer_client(requester_fd).receive().encode() == LU_OK
    stalled = daemon.peer_client(stalled_fd)
    big = bytes(random.Random(2).randrange(256) for _ in range(4000))
    # Replies the socket buffer did not take, interleaved with the events in the order the
    # daemon produced them: it ran the writer's WRITEs between the stalled client's READs.
    queued = [stalled.receive() for _ in range(41 - 11 + 1 + 20)]
    reads = [m for m in queued if m.op == Op.READ]
    events = [m for m in queued if m.op == Op.WATCH_EVENT]
    assert [m.req_id for m in reads] == list(range(11, 42))
    assert all(m.payload == big for m in reads)
    assert [m.payload for m in events] == [payload(f"/out/n{i}", "out-token") for i in range(20)]
    assert stalled.is_silent()


def test_watches_survive_restore_without_initial_events(
    restored_xenstored: RestoreImage,
) -> None:
    daemon = restored_xenstored((DATA / "many_watches.img").read_bytes())
    first_fd, second_fd, requester_fd = daemon.conn_peers
    first, second = daemon.peer_client(first_fd), daemon.peer_client(second_fd)
    assert first.is_silent() and second.is_silent()
    daemon.client("xenstore-write", "/local/domain/0/data/item3", "x")
    got = {first.event().payload for _ in range(3)}
    assert got == {
        payload("data/item3", "rel-3"),
        payload("/local/domain/0/data/item3", "root"),
        payload("/local/domain/0/data/item3", "x" * 200),
    }
    assert first.is_silent() and second.is_silent()
    assert daemon.peer_client(requester_fd).receive().encode() == LU_OK


def test_domains_and_targets_survive_restore(restored_xenstored: RestoreImage) -> None:
    daemon = restored_xenstored((DATA / "domains5.img").read_bytes())
    with daemon.connect() as dom0:
        for domid in range(1, 6):
            assert dom0.call(Op.IS_DOMAIN_INTRODUCED, str(domid)).payload == b"T\0"
            assert dom0.call(Op.GET_PERMS, f"/local/domain/{domid}").payload == payload(
                f"n{domid}", "r0"
            )
        assert dom0.call(Op.IS_DOMAIN_INTRODUCED, "6").payload == b"F\0"
        assert dom0.call(Op.GET_PERMS, "/shared").payload == payload("r0", "b1", "r2", "w3", "n4")


def test_big_tree_values_survive_restore(restored_xenstored: RestoreImage) -> None:
    daemon = restored_xenstored((DATA / "big_tree.img").read_bytes())
    rng = random.Random(5)
    expected = {
        f"/big/d{i}/n{j}": bytes(rng.randrange(256) for _ in range(rng.randrange(301)))
        for i in range(40)
        for j in range(49)
    }
    with daemon.connect() as client:
        for path in ("/big/d0/n0", "/big/d17/n23", "/big/d39/n48"):
            assert client.call(Op.READ, path).payload == expected[path]
        assert len(client.call(Op.DIRECTORY, "/big").strings) == 40
        assert client.call(Op.READ, "/deep/a/b/c").payload == bytes(64)


def test_a_partly_sent_ring_reply_is_finished_after_restore(
    restored_xenstored: RestoreImage,
) -> None:
    daemon = restored_xenstored((DATA / "ring_pending.img").read_bytes())
    big = bytes(random.Random(7).randrange(256) for _ in range(3000))
    reply = encode_message(Op.READ, 9, 0, big)
    event = encode_message(Op.WATCH_EVENT, 0, 0, payload("w/x", "guest-watch"))
    with daemon.guest(1) as guest:
        # The old daemon had put the first 1024 bytes into the old ring page.
        pending = b""
        while len(pending) < len(reply) - 1024 + len(event):
            chunk = guest.stream.recv_within(5)
            assert chunk, "the restored daemon did not send the rest of the reply"
            pending += chunk
        assert pending == reply[1024:] + event
        # The 10 header bytes received before the update are still the start of a message.
        guest.send_raw(encode_message(Op.READ, 10, 0, payload("w/x"))[10:])
        assert guest.receive().encode() == encode_message(Op.READ, 10, 0, b"event for dom1")
