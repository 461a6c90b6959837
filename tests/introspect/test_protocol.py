"""CONTROL introspect on an in-process mock, driven by xsmig's trio client: who may freeze,
what waits while frozen, what the image holds, and the probe on the real 4.17 xenstored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from introlib import snapshot
from peerlib import RealXenstored, settled
from trio.testing import MockClock

from xsmig_daemon.client import Xenstore, XenstoreError, connect
from xsmig_daemon.client.connection import Request
from xsmig_daemon.export.introspect import answers_introspect
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import ConnectionData, NodeData, SocketSpec
from xsmig_daemon.mockd import MockDaemon
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

READ_PIECE = Request(Op.CONTROL, b"introspect\0read\0")


async def read_image_bytes(xs: Xenstore) -> bytes:
    pieces = []
    while piece := await xs.conn.request(READ_PIECE):
        assert len(piece) <= 4096
        pieces.append(piece)
    return b"".join(pieces)


async def test_probe_answers_the_protocol_version(mock_daemon: MockDaemon) -> None:
    async with connect(mock_daemon.socket_path, timeout=5) as xs:
        assert await xs.control("introspect", "probe") == b"xsmig-introspect 1\0"
    assert await answers_introspect(mock_daemon.socket_path, 5)


async def test_only_privileged_callers_and_one_freeze_at_a_time(mock_daemon: MockDaemon) -> None:
    async with connect(mock_daemon.socket_path, timeout=5) as xs:
        await xs.introduce(3, 0x1003, 13)
        async with connect(mock_daemon.domain_socket_path(3), timeout=5) as guest:
            with pytest.raises(XenstoreError, match="EACCES"):
                await guest.control("introspect", "freeze", "1000")
        for bad in ("0", "60001", "x"):
            with pytest.raises(XenstoreError, match="EINVAL"):
                await xs.control("introspect", "freeze", bad)
        with pytest.raises(XenstoreError, match="EINVAL"):
            await xs.conn.request(READ_PIECE)
        await xs.control("introspect", "freeze", "5000")
        async with connect(mock_daemon.socket_path, timeout=5) as other:
            # Its connection is accepted only after the thaw; the request waits until then.
            answered = trio.Event()

            async def try_freeze() -> None:
                await other.control("introspect", "freeze", "5000")  # an error fails the test
                answered.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(try_freeze)
                await settled()
                assert not answered.is_set(), "a second freeze was served while frozen"
                await xs.control("introspect", "thaw")
            assert answered.is_set()  # after the thaw it froze the daemon itself
            await other.control("introspect", "thaw")


async def test_frozen_daemon_queues_everybody_and_images_one_instant(
    mock_daemon: MockDaemon, mock_clock: MockClock
) -> None:
    mock_clock.rate = 1.0  # real time, plus the jump below
    async with (
        connect(mock_daemon.socket_path, timeout=5) as exporter,
        connect(mock_daemon.socket_path, timeout=5) as writer,
    ):
        await writer.write("/before", b"1")
        leaving = await trio.open_unix_socket(mock_daemon.socket_path)
        await leaving.send_all(encode_message(Op.READ, 7, 0, b"/before\0"))
        with trio.fail_after(5):
            assert await leaving.receive_some()  # served: the daemon knows it
        await exporter.control("introspect", "freeze", "5000")
        await leaving.aclose()  # it closes during the freeze: still in this instant's image
        done = trio.Event()

        async def write_during_freeze() -> None:
            await writer.write("/during", b"2")
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_during_freeze)
            await settled()
            assert not done.is_set(), "a write was processed while frozen"
            mock_clock.jump(0.3)  # the freeze lasts at least this long
            image = await read_image_bytes(exporter)
            duration = float((await exporter.control("introspect", "thaw")).rstrip(b"\0"))
            with trio.fail_after(5):
                await done.wait()
        assert duration >= 0.3
        records = [item.record for item in read_image([image])]
        paths = {r.path for r in records if isinstance(r, NodeData) and r.committed}
        assert "/before" in paths and "/during" not in paths
        sockets = [r for r in records if isinstance(r, ConnectionData)]
        # writer and the client that left; not the exporter itself.
        assert len(sockets) == 2 and all(isinstance(r.spec, SocketSpec) for r in sockets)
        assert await writer.read("/during") == b"2"
        await settled()
        assert len(mock_daemon.engine.connections) == 2  # the leaver is gone after the thaw


async def test_a_capture_freeze_ends_before_the_reads(mock_daemon: MockDaemon) -> None:
    async with (
        connect(mock_daemon.socket_path, timeout=5) as exporter,
        connect(mock_daemon.socket_path, timeout=5) as writer,
    ):
        await writer.write("/before", b"1")
        await exporter.control("introspect", "freeze", "60000", "capture")
        # Served long before the freeze's own 60 s deadline: the capture ended it.
        with trio.fail_after(10):
            await writer.write("/after", b"2")
        image = await read_image_bytes(exporter)
        duration = float((await exporter.control("introspect", "thaw")).rstrip(b"\0"))
        assert duration < 10
        records = [item.record for item in read_image([image])]
        paths = {r.path for r in records if isinstance(r, NodeData) and r.committed}
        assert "/before" in paths and "/after" not in paths
        with pytest.raises(XenstoreError, match="EINVAL"):
            await exporter.control("introspect", "freeze", "5000", "later")


async def test_reads_after_the_deadline_say_the_freeze_ended(
    mock_daemon: MockDaemon, mock_clock: MockClock
) -> None:
    mock_clock.rate = 1.0
    async with connect(mock_daemon.socket_path, timeout=5) as xs:
        await xs.control("introspect", "freeze", "100")
        mock_clock.jump(0.2)  # past the deadline
        with pytest.raises(XenstoreError, match="EAGAIN"):
            await xs.conn.request(READ_PIECE)
        with pytest.raises(XenstoreError, match="EINVAL"):
            await xs.control("introspect", "thaw")
        await xs.write("/served", b"yes")


def test_real_417_answers_einval_and_auto_uses_wire(
    real_xenstored: RealXenstored, tmp_path: Path
) -> None:
    assert not trio.run(answers_introspect, str(real_xenstored.socket_path), 5.0)
    run = snapshot(real_xenstored.socket_path, "--output", str(tmp_path / "x.img"), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["source"]["kind"] == "wire"


async def test_reading_a_captured_copy_is_not_held_against_the_deadline(
    mock_daemon: MockDaemon, mock_clock: MockClock
) -> None:
    """The deadline protects a frozen daemon; after a capture the daemon runs, so a slow
    reader of the copy (here: longer than the deadline) still gets all of it."""
    mock_clock.rate = 1.0
    async with connect(mock_daemon.socket_path, timeout=5) as xs:
        await xs.write("/slow/reader", b"1")
        await xs.control("introspect", "freeze", "100", "capture")
        mock_clock.jump(0.3)  # the reader is slow: past the deadline before its first read
        image = await read_image_bytes(xs)
        await xs.control("introspect", "thaw")
    paths = {r.path for r in (i.record for i in read_image([image])) if isinstance(r, NodeData)}
    assert "/slow/reader" in paths
