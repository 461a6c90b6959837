"""A real xenstored's own live update (4.17 and 4.20) with the mock as the new binary: the
mock loads that version's dump and every client, socket or ring, carries on."""

from __future__ import annotations

import sys
from pathlib import Path

from lusupport import (
    LineWatcher,
    cmdline,
    diff,
    live_update,
    pyxs_watching,
    snapshot,
    write_launcher,
)
from peerlib import REPO_ROOT, RealXenstored
from wireclient import WireClient

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op


def _ok(client: WireClient, op: Op, *args: str) -> bytes:
    reply = client.call(op, *args)
    assert reply.op == op, (op, reply.payload)
    return reply.payload


def _mock_launcher(directory: Path) -> Path:
    # C execs this with its own argv plus -U and its environment (XENSTORED_RUNDIR, and for
    # 4.17 the peer's LD_PRELOAD shim, which Python does not need; 4.20 runs through its own
    # loader and passes none).
    return write_launcher(
        directory / "lu-to-mock",
        f"unset LD_PRELOAD LD_LIBRARY_PATH\ncd {REPO_ROOT} && exec {sys.executable} -m "
        'xsmig_daemon mockd "$@"',
    )


def test_real_xenstored_to_mock(referee_xenstored: RealXenstored, tmp_path: Path) -> None:
    xs = referee_xenstored
    pid = xs.pid
    admin = xs.connect()
    _ok(admin, Op.WRITE, "/w", "0")
    _ok(admin, Op.WRITE, "/p", "0")
    _ok(admin, Op.WRITE, "/local/domain/5/data", "")
    _ok(admin, Op.SET_PERMS, "/local/domain/5/data", "n5")
    _ok(admin, Op.INTRODUCE, "5", "4097", "11")
    ring = xs.guest(5)
    _ok(ring, Op.WATCH, "data", "g")
    assert ring.event().payload == b"data\0g\0"

    watcher = LineWatcher(xs.socket_path, "/w")
    assert watcher.line() == "/w"
    py, events = pyxs_watching(xs.socket_path)

    raw = xs.connect()
    sent = [raw.send(Op.WRITE, b"/r/%d\0v" % i) for i in range(3)]
    half = xs.connect()
    message = encode_message(Op.WRITE, 77, 0, b"/half\0done")
    half.send_raw(message[:10])
    _ok(admin, Op.READ, "/w")  # a round trip: C has read everything sent so far

    before, after = tmp_path / "before.img", tmp_path / "after.img"
    snapshot(xs.socket_path, before, "xen-4.17")
    result = live_update(xs, _mock_launcher(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr + xs.log()
    assert xs.pid == pid and xs.alive()
    assert "live update restored" in xs.log()
    assert "-U" in cmdline(pid) and "mockd" in cmdline(pid)
    snapshot(xs.socket_path, after, "xen-4.17")
    compared = diff(before, after)
    assert compared.returncode == 0, compared.stdout + compared.stderr

    replies = [raw.receive() for _ in sent]
    assert [(r.req_id, r.payload) for r in replies] == [(i, b"OK\0") for i in sent]
    assert raw.is_silent(0.3)
    half.send_raw(message[10:])
    reply = half.receive()
    assert (reply.req_id, reply.payload) == (77, b"OK\0")

    _ok(admin, Op.WRITE, "/w/x", "1")
    assert watcher.line() == "/w/x"
    assert watcher.silent()
    py.write(b"/p/after", b"1")
    assert next(events) == (b"/p/after", b"py")

    # The ring's watch lives on in the mock; its stand-in endpoint replaces the ring page.
    guest = WireClient.connect(xs.rundir / "domain" / "5")
    _ok(admin, Op.WRITE, "/local/domain/5/data/k", "1")
    assert guest.event().payload == b"data/k\0g\0"
    assert guest.is_silent(0.3)
    assert _ok(guest, Op.READ, "data/k") == b"1\0"

    watcher.close()
    py.close()
    for client in (admin, raw, half, guest):
        client.close()
