"""The test peer harness itself: the real 4.17 daemon starts, serves, dumps and restores."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import trio
import trio.testing
from peerlib import (
    PeerInstall,
    RealXenstored,
    RestoreFds,
    RestoreImage,
    settled,
    shared_dir,
    start_real_xenstored,
    start_restored_xenstored,
    wait_until,
    wait_until_async,
)
from wireclient import PeerError, WireClient, payload

from xsmig_daemon.image.records import (
    ConnectionData,
    End,
    GlobalData,
    Record,
    RingSpec,
    SocketSpec,
)
from xsmig_daemon.wire.ops import Op

#: basic.img of shared/peer/images, as listed in its DESCRIPTION.txt / by hand from the bytes:
#: GLOBAL_DATA {socket fd 4, evtchn fd 7}, one socket CONN at fd 8 with the pending LU reply.
BASIC_IMAGE_FDS = RestoreFds(rw_socket_fd=4, evtchn_fd=7, socket_conn_fds=(8,))
LU_OK_REPLY = bytes.fromhex("00000000 00000000 00000000 03000000") + b"OK\0"


def test_real_daemon_serves_tools_and_raw_clients(real_xenstored: RealXenstored) -> None:
    real_xenstored.client("xenstore-write", "/t/a", "value-a")
    assert real_xenstored.client("xenstore-read", "/t/a").stdout == "value-a\n"
    with real_xenstored.connect() as client:
        reply = client.call(Op.READ, "/t/a")
        assert (reply.op, reply.req_id, reply.payload) == (Op.READ, 1, b"value-a")
        assert client.call(Op.READ, "/t/missing").payload == b"ENOENT\0"
        assert client.call(Op.WATCH, "/t", "tok").payload == b"OK\0"
        assert client.event().payload == b"/t\0tok\0"
    control = real_xenstored.client("xenstore-control", "help").stdout
    assert "live-update" in control


def test_stop_ends_the_process_and_removes_the_rundir(peer_install: PeerInstall) -> None:
    daemon = start_real_xenstored(install=peer_install)
    pid, rundir = daemon.pid, daemon.rundir
    assert len(str(daemon.socket_path)) < 100
    daemon.stop()
    assert not rundir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_capture_keeps_the_daemon_and_its_state(
    real_xenstored: RealXenstored, tmp_path: Path
) -> None:
    real_xenstored.client("xenstore-write", "/kept", "yes")
    pid = real_xenstored.pid
    image = real_xenstored.capture_image(tmp_path / "x.img")
    assert image[:16] == b"xenstore" + bytes.fromhex("00000001 00000000")
    assert b"/kept\0yes" in image
    assert real_xenstored.pid == pid and real_xenstored.alive()
    assert real_xenstored.client("xenstore-read", "/kept").stdout == "yes\n"


def test_restore_of_a_real_image_hands_over_socket_connections(
    shared_path: Path, peer_install: PeerInstall
) -> None:
    image = (shared_path / "peer/images/basic.img").read_bytes()
    daemon = start_restored_xenstored(image, BASIC_IMAGE_FDS, install=peer_install)
    try:
        # The restored socket connection gets the reply the old daemon left pending.
        with daemon.peer_client(8) as restored:
            assert restored.receive().encode() == LU_OK_REPLY
            assert restored.call(Op.READ, "/perm/node").payload == b"p"
        assert daemon.client("xenstore-read", "/vm/uuid-1/name").stdout == "guest1\n"
        with daemon.connect() as fresh:
            assert fresh.call(Op.GET_PERMS, "/perm/node").payload == payload("b0", "r1", "w2")
    finally:
        daemon.stop()


def test_restore_of_a_bad_image_reports_the_daemons_error(peer_install: PeerInstall) -> None:
    image = b"xenstore" + bytes.fromhex("00000002 00000000") + bytes(8)
    with pytest.raises(PeerError, match="Unknown record identifier"):
        start_restored_xenstored(image, RestoreFds(3, 4), install=peer_install)


def test_restore_fds_come_from_the_records() -> None:
    records: list[Record] = [
        GlobalData(rw_socket_fd=3, evtchn_fd=6),
        ConnectionData(1, RingSpec(0)),
        ConnectionData(2, SocketSpec(7)),
        ConnectionData(3, SocketSpec(9)),
        End(),
    ]
    assert RestoreFds.from_records(records) == RestoreFds(3, 6, (7, 9))
    with pytest.raises(PeerError, match="GLOBAL_DATA"):
        RestoreFds.from_records([End()])


def test_restore_fds_of_a_real_image(shared_path: Path) -> None:
    image = (shared_path / "peer/images/basic.img").read_bytes()
    assert RestoreFds.from_image(image) == BASIC_IMAGE_FDS


def test_wire_client_times_out_instead_of_hanging(real_xenstored: RealXenstored) -> None:
    with WireClient.connect(real_xenstored.socket_path, timeout=0.2) as client:
        assert client.is_silent(0.05)
        with pytest.raises(PeerError, match="within the timeout"):
            client.receive()


def test_a_killed_daemon_is_reported(peer_install: PeerInstall) -> None:
    daemon = start_real_xenstored(install=peer_install)
    try:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.process.wait(5)
        assert not daemon.alive()
    finally:
        assert daemon.stop() == -signal.SIGKILL


def test_shared_is_found_beside_the_repository_or_in_xsmig_shared(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XSMIG_SHARED", raising=False)
    assert shared_dir() == Path(__file__).resolve().parent.parent.parent / "shared"
    monkeypatch.setenv("XSMIG_SHARED", str(tmp_path))
    assert shared_dir() == tmp_path
    assert PeerInstall.locate().capture_script == tmp_path / "peer/capture-image.sh"


def test_a_guest_speaks_over_its_ring_page(real_xenstored: RealXenstored) -> None:
    with real_xenstored.connect() as dom0:
        dom0.call(Op.WRITE, "/local/domain/1/name")
        assert dom0.call(Op.SET_PERMS, "/local/domain/1", "n1").payload == b"OK\0"
        assert dom0.call(Op.INTRODUCE, "1", "4097", "11").payload == b"OK\0"
        with real_xenstored.guest(1) as guest:
            # Relative to /local/domain/1, checked against dom1's rights.
            assert guest.call(Op.WRITE, "data").payload == b"OK\0"
            assert guest.call(Op.GET_PERMS, "data").payload == payload("n1")
            assert guest.call(Op.READ, "/tool/xenstored").payload == b"EACCES\0"
            # More than one ring's worth of reply (the ring holds 1024 bytes).
            dom0.request(Op.WRITE, payload("/local/domain/1/big", value=b"b" * 3000))
            assert guest.call(Op.READ, "big").payload == b"b" * 3000
            assert guest.call(Op.WATCH, "data", "tok").payload == b"OK\0"
            assert guest.event().payload == payload("data", "tok")
            dom0.call(Op.RM, "/local/domain/1/data")
            assert guest.event().payload == payload("data", "tok")
        with pytest.raises(PeerError, match="one new ring page"):
            real_xenstored.guest(2)


# --------------------------------------------------------------------------- every referee


def test_each_referee_serves_captures_and_restores(
    referee_xenstored: RealXenstored, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    xs = referee_xenstored
    xs.client("xenstore-write", "/kept", "yes")
    with xs.connect() as client:
        assert client.call(Op.READ, "/kept").payload == b"yes"
    assert "live-update" in xs.client("xenstore-control", "help").stdout
    image = xs.capture_image(tmp_path / "x.img")
    assert image[:16] == b"xenstore" + bytes.fromhex("00000001 00000000")
    assert xs.alive() and xs.client("xenstore-read", "/kept").stdout == "yes\n"
    restored = referee_restore(image)
    assert restored.client("xenstore-read", "/kept").stdout == "yes\n"
    # The capture's requester is the image's last socket connection, its OK reply pending.
    last_fd = list(restored.conn_peers)[-1]
    with restored.peer_client(last_fd) as requester:
        assert requester.receive().encode() == LU_OK_REPLY


def test_a_guest_speaks_over_its_ring_page_on_each_referee(
    referee_xenstored: RealXenstored,
) -> None:
    with referee_xenstored.connect() as dom0:
        dom0.call(Op.WRITE, "/local/domain/3/name")
        assert dom0.call(Op.SET_PERMS, "/local/domain/3", "n3").payload == b"OK\0"
        assert dom0.call(Op.INTRODUCE, "3", "4097", "11").payload == b"OK\0"
        with referee_xenstored.guest(3) as guest:
            assert guest.request(Op.WRITE, payload("data", value=b"x")).payload == b"OK\0"
            assert dom0.call(Op.READ, "/local/domain/3/data").payload == b"x"


#: basic.img of shared/peer-4.20/images (DESCRIPTION.txt; README: 4.20 has no tdb file open,
#: so its fds are one lower than 4.17's): GLOBAL {socket 3, evtchn 6}, the requester at fd 7.
BASIC_420_IMAGE_FDS = RestoreFds(rw_socket_fd=3, evtchn_fd=6, socket_conn_fds=(7,))


def test_the_420_referee_restores_its_own_dump(
    shared_path: Path, restored_xenstored_420: RestoreImage
) -> None:
    image = (shared_path / "peer-4.20/images/basic.img").read_bytes()
    assert RestoreFds.from_image(image) == BASIC_420_IMAGE_FDS
    daemon = restored_xenstored_420(image)
    assert daemon.install.version == "4.20"
    with daemon.peer_client(7) as restored:
        assert restored.receive().encode() == LU_OK_REPLY
        assert restored.call(Op.GET_PERMS, "/perm/node").payload == payload("b0", "r1", "w2")


def test_versions_are_located_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XSMIG_SHARED", str(tmp_path))
    monkeypatch.setenv("XEN_PEER_NEXT_CACHE", str(tmp_path / "cache"))
    install = PeerInstall.locate("4.20")
    assert install.capture_script == tmp_path / "peer-4.20/capture.sh"
    assert install.label == "xen-4.20"
    # Through its own loader, the shim preloaded for the daemon only, nothing in the env.
    argv = install.daemon_argv("-N")
    assert argv[0].endswith("/ld-linux-x86-64.so.2") and "--preload" in argv
    assert argv[-2:] == [str(tmp_path / "cache/root/usr/lib/xen-4.20/bin/xenstored"), "-N"]
    assert "--preload" not in install.tool_argv("xenstore-read", "/a")
    assert install.daemon_env(tmp_path).get("LD_PRELOAD") == os.environ.get("LD_PRELOAD")
    with pytest.raises(PeerError, match=r"no real xenstored '9\.9'"):
        PeerInstall.locate("9.9")


def test_wait_until_names_what_it_waited_for() -> None:
    calls: list[int] = []

    def third_call() -> bool:
        calls.append(1)
        return len(calls) == 3

    wait_until(third_call, 5, "three calls")
    assert len(calls) == 3
    with pytest.raises(PeerError, match="waiting for the impossible"):
        wait_until(lambda: False, 0.05, "the impossible")


async def test_wait_until_async_lets_other_tasks_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done = trio.Event()
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(1)
            done.set()

        nursery.start_soon(later)
        await wait_until_async(done.is_set, 5, "the other task")
    with pytest.raises(PeerError, match="waiting for nothing"):
        await wait_until_async(lambda: False, 5, "nothing")


async def test_settled_returns_only_when_nothing_can_run() -> None:
    steps: list[int] = []

    async def busy() -> None:
        for step in range(100):
            steps.append(step)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy)
        await settled()
        assert len(steps) == 100  # the other task ran to its end first
