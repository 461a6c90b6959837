"""mock -> real xenstored (4.17 and 4.20): a v1 image it loads, or a refusal naming the losses."""

from __future__ import annotations

from pathlib import Path

import pytest
from lusupport import (
    LineWatcher,
    cmdline,
    control,
    diff,
    live_update,
    pyxs_watching,
    snapshot,
    write_launcher,
)
from peerlib import MockDaemon, PeerInstall, start_mockd
from wireclient import WireClient

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op


def _ok(client: WireClient, op: Op, *args: str, tx_id: int = 0) -> bytes:
    reply = client.call(op, *args, tx_id=tx_id)
    assert reply.op == op, (op, reply.payload)
    return reply.payload


def _real_launcher(directory: Path, install: PeerInstall, rundir: Path) -> Path:
    """The peer's xenstored as a live-update successor (env as start-xenstored.sh sets it);
    the mock's own arguments mean nothing to it, so it gets ``-N -U``."""
    return write_launcher(directory / "lu-to-xen", install.successor_script(rundir, "-N", "-U"))


def _runs_xenstored(pid: int) -> bool:
    """The real daemon, started directly (4.17) or through its own loader (4.20)."""
    return any(arg.endswith("/bin/xenstored") for arg in cmdline(pid))


@pytest.fixture
def mock_for_xen(referee: PeerInstall):  # type: ignore[no-untyped-def]
    """The mock handing over to the ``referee`` version (4.17, then 4.20)."""
    daemon = start_mockd(args=["--lu-successor", referee.label], install=referee)
    try:
        yield daemon
    finally:
        daemon.stop()


def test_mock_to_real_xenstored(mock_for_xen: MockDaemon, tmp_path: Path) -> None:
    mock = mock_for_xen
    version = mock.install.version
    pid = mock.pid
    admin = mock.connect()
    _ok(admin, Op.WRITE, "/w", "0")
    _ok(admin, Op.WRITE, "/p/q", "1")
    _ok(admin, Op.SET_PERMS, "/p/q", "n0", "r7")
    watcher = LineWatcher(mock.socket_path, "/w")
    assert watcher.line() == "/w"
    py, events = pyxs_watching(mock.socket_path)
    raw = mock.connect()
    sent = [raw.send(Op.WRITE, b"/r/%d\0v" % i) for i in range(3)]
    half = mock.connect()
    message = encode_message(Op.WRITE, 77, 0, b"/half\0done")
    half.send_raw(message[:10])
    _ok(admin, Op.READ, "/w")

    before, after = tmp_path / "before.img", tmp_path / "after.img"
    snapshot(mock.socket_path, before, "xen-4.17")
    launcher = _real_launcher(tmp_path, mock.install, mock.rundir)
    result = live_update(mock, launcher)
    assert result.returncode == 0, result.stdout + result.stderr + mock.log()
    assert mock.pid == pid and mock.alive()
    assert _runs_xenstored(pid) and "-U" in cmdline(pid)
    snapshot(mock.socket_path, after, "xen-4.17")
    compared = diff(before, after)
    # 4.17 answers GET_PERMS on special nodes with EINVAL, so its snapshot cannot show the
    # DOMID_ANY read entry the mock (current Xen) gives @releaseDomain; 4.20 answers them as
    # the mock does. Nothing else differs.
    expected = ["node @releaseDomain: perms: A n0,r32757, B n0"] if version == "4.17" else []
    assert compared.stdout.splitlines() == expected, compared.stdout + compared.stderr

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
    assert mock.client("xenstore-ls", "-p", "/p").stdout.count("r7") == 1

    watcher.close()
    py.close()
    for client in (admin, raw, half):
        client.close()


def test_mock_to_real_refuses_what_it_would_lose(mock_for_xen: MockDaemon, tmp_path: Path) -> None:
    mock = mock_for_xen
    pid = mock.pid
    admin = mock.connect()
    _ok(admin, Op.INTRODUCE, "5", "4097", "11")
    _ok(admin, Op.WATCH, "/deep", "d", "1")
    launcher = _real_launcher(tmp_path, mock.install, mock.rundir)
    result = live_update(mock, launcher)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Live update would lose (use -F to force):" in text, text
    assert "watch depth limit" in text and "domain 5: its stand-in endpoint" in text, text
    assert mock.pid == pid and "mockd" in " ".join(cmdline(pid))
    _ok(admin, Op.UNWATCH, "/deep", "d")
    _ok(admin, Op.RELEASE, "5")

    # An open transaction blocks as in C: after -t it fails with C's text.
    tx_id = _ok(admin, Op.TRANSACTION_START, "").rstrip(b"\0").decode()
    result = live_update(mock, launcher, "-t", "1")
    assert result.returncode != 0
    assert "Domains with long running transactions:\nDomain 0: 1 s" in (
        result.stdout + result.stderr
    )
    assert _ok(admin, Op.TRANSACTION_END, "T", tx_id=int(tx_id)) == b"OK\0"
    assert control(admin, "live-update", "-a") == "No live-update session active."
    assert mock.pid == pid and "mockd" in " ".join(cmdline(pid))
    admin.close()


def test_mock_to_real_forced_keeps_what_it_can(mock_for_xen: MockDaemon, tmp_path: Path) -> None:
    mock = mock_for_xen
    admin = mock.connect()
    _ok(admin, Op.INTRODUCE, "5", "4097", "11")
    _ok(admin, Op.WATCH, "/deep", "d", "1")
    assert admin.event().payload == b"/deep\0d\0"
    launcher = _real_launcher(tmp_path, mock.install, mock.rundir)
    result = live_update(mock, launcher, "-F")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _runs_xenstored(mock.pid)
    # The domain stays introduced; the depth-limited watch became a plain one (4.17 has no
    # depth), so it now reports a grandchild, which depth 1 excluded.
    assert _ok(admin, Op.IS_DOMAIN_INTRODUCED, "5") == b"T\0"
    _ok(admin, Op.WRITE, "/deep/a/b", "1")
    assert admin.event().payload == b"/deep/a/b\0d\0"
    assert admin.is_silent(0.3)
    admin.close()


def test_a_node_of_a_domain_never_introduced_refuses_unless_forced(
    mock_for_xen: MockDaemon, tmp_path: Path
) -> None:
    """Both real loaders exit restoring a node whose owner has no ring: refused without -F;
    with -F dom0 owns it and the real daemon runs on."""
    mock = mock_for_xen
    admin = mock.connect()
    _ok(admin, Op.WRITE, "/local/domain/7/x", "1")
    _ok(admin, Op.SET_PERMS, "/local/domain/7", "n7", "r0")
    launcher = _real_launcher(tmp_path, mock.install, mock.rundir)
    result = live_update(mock, launcher)
    text = result.stdout + result.stderr
    assert result.returncode != 0 and "Live update would lose (use -F to force):" in text
    assert "node /local/domain/7: owner domain 7 is not introduced" in text, text
    assert "mockd" in " ".join(cmdline(mock.pid))
    result = live_update(mock, launcher, "-F")
    assert result.returncode == 0, result.stdout + result.stderr + mock.log()
    assert _runs_xenstored(mock.pid)
    assert _ok(admin, Op.GET_PERMS, "/local/domain/7") == b"n0\0r0\0"
    assert _ok(admin, Op.READ, "/local/domain/7/x") == b"1\0"  # _ok sends NUL-terminated
    admin.close()
