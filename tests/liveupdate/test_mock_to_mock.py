"""mock -> mock live update driven by Xen 4.17's own xenstore-control, every client kind kept."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lusupport import (
    LineWatcher,
    cmdline,
    control,
    diff,
    live_update,
    mock_launcher,
    pyxs_watching,
    serving_pid,
    snapshot,
)
from peerlib import MockDaemon
from wireclient import WireClient

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op


def _ok(client: WireClient, op: Op, *args: str, tx_id: int = 0) -> bytes:
    reply = client.call(op, *args, tx_id=tx_id)
    assert reply.op == op, (op, reply.payload)
    return reply.payload


def _transactions_around_the_update(
    mockd: MockDaemon, admin: WireClient
) -> tuple[WireClient, dict[str, int]]:
    """EAGAIN exactly as without the update: tx a (a node it read was changed and changed
    back before the update: already doomed), tx b (changed after), tx c (commits)."""
    txc = mockd.connect()
    tx_ids = {}
    for name in ("a", "b", "c"):
        _ok(admin, Op.WRITE, f"/t/{name}", "0")
        tx_ids[name] = int(_ok(txc, Op.TRANSACTION_START, "").rstrip(b"\0"))
        _ok(txc, Op.READ, f"/t/{name}", tx_id=tx_ids[name])
        _ok(txc, Op.WRITE, f"/t/{name}/w", "1", tx_id=tx_ids[name])
    _ok(admin, Op.WRITE, "/t/a", "x")
    _ok(admin, Op.WRITE, "/t/a", "0")
    return txc, tx_ids


def _end_transactions(admin: WireClient, txc: WireClient, tx_ids: dict[str, int]) -> None:
    _ok(admin, Op.WRITE, "/t/b", "changed")
    verdicts = {}
    for name, tx_id in tx_ids.items():
        reply = txc.call(Op.TRANSACTION_END, "T", tx_id=tx_id)
        verdicts[name] = reply.payload.rstrip(b"\0")
    assert verdicts == {"a": b"EAGAIN", "b": b"EAGAIN", "c": b"OK"}


def _guest_watching(mockd: MockDaemon, admin: WireClient) -> WireClient:
    """Domain 5's stand-in endpoint with a relative watch on its own ``data``."""
    _ok(admin, Op.INTRODUCE, "5", "4660", "7")
    _ok(admin, Op.WRITE, "/local/domain/5/data", "")
    _ok(admin, Op.SET_PERMS, "/local/domain/5/data", "n5")
    guest = mockd.guest(5)
    _ok(guest, Op.WATCH, "data", "g")
    assert guest.event().payload == b"data\0g\0"
    return guest


class Closable(Protocol):
    def close(self) -> None: ...


def _close(*clients: Closable) -> None:
    for client in clients:
        client.close()


def test_mock_to_mock_keeps_every_client(mockd: MockDaemon, tmp_path: Path) -> None:
    launcher = mock_launcher(tmp_path)
    pid = mockd.pid
    admin = mockd.connect()
    _ok(admin, Op.WRITE, "/w", "0")
    _ok(admin, Op.WRITE, "/p", "0")

    watcher = LineWatcher(mockd.socket_path, "/w")
    assert watcher.line() == "/w"  # the initial event

    py, events = pyxs_watching(mockd.socket_path)
    py.transaction()
    py.write(b"/p/in-tx", b"before")

    raw = mockd.connect()
    sent = [raw.send(Op.WRITE, b"/r/%d\0v%d" % (i, i)) for i in range(3)]
    sent.append(raw.send(Op.READ, b"/w\0"))

    half = mockd.connect()
    message = encode_message(Op.WRITE, 77, 0, b"/half\0done")
    half.send_raw(message[:10])

    guest = _guest_watching(mockd, admin)

    txc, tx_ids = _transactions_around_the_update(mockd, admin)

    before, after = tmp_path / "before.img", tmp_path / "after.img"
    snapshot(mockd.socket_path, before)
    result = live_update(mockd, launcher)
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot(mockd.socket_path, after)
    compared = diff(before, after)
    assert compared.returncode == 0, compared.stdout + compared.stderr

    # Same unit: the pid is held, the successor serves as its child.
    assert mockd.pid == pid and mockd.alive()
    assert "-U" in cmdline(serving_pid(pid))
    assert "live update restored" in mockd.log()

    replies = [raw.receive() for _ in sent]
    assert [r.req_id for r in replies] == sent
    assert replies[-1].payload == b"0\0"
    assert raw.is_silent(0.3)

    half.send_raw(message[10:])
    reply = half.receive()
    assert (reply.op, reply.req_id, reply.payload) == (Op.WRITE, 77, b"OK\0")
    assert _ok(admin, Op.READ, "/half") == b"done"

    py.write(b"/p/in-tx2", b"after")
    assert py.commit() is True
    assert next(events) == (b"/p/in-tx", b"py")
    assert next(events) == (b"/p/in-tx2", b"py")
    assert _ok(admin, Op.READ, "/p/in-tx") == b"before"

    _ok(admin, Op.WRITE, "/w/x", "1")
    assert watcher.line() == "/w/x"
    assert watcher.silent()

    _ok(admin, Op.WRITE, "/local/domain/5/data/k", "1")
    assert guest.event().payload == b"data/k\0g\0"
    assert guest.is_silent(0.3)

    _end_transactions(admin, txc, tx_ids)

    _close(watcher, py, admin, raw, half, guest, txc)


def test_two_updates_in_a_row_and_the_requester_gets_one_ok(
    mockd: MockDaemon, tmp_path: Path
) -> None:
    launcher = mock_launcher(tmp_path)
    admin = mockd.connect()
    for round_ in range(2):
        assert control(admin, "live-update", "-f", str(launcher)) == "OK"
        reply = admin.call(Op.CONTROL, "live-update", "-s", "-t", "5")
        assert reply.payload == b"OK\0", round_
        assert admin.is_silent(0.3)
        _ok(admin, Op.WRITE, f"/round/{round_}", "x")
    admin.close()
