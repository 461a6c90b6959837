"""The control socket in-process: requests, serialisation, deadlines, misbehaving clients."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from peerlib import settled, wait_until_async

from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.service.app import Service
from xsmig_daemon.service.control import bind_control_socket
from xsmig_daemon.service.errors import ControlSocketError

from .conftest import make_config
from .fakes import IMAGE, FakeRunner


class Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def line(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next response line, or None if the service closed the connection."""
        with trio.fail_after(timeout):
            while b"\n" not in self.buffer:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:  # closed with our bytes unread: a reset
                    return None
                if not chunk:
                    return None
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        document: dict[str, Any] = json.loads(line)
        return document

    async def request(self, **fields: Any) -> dict[str, Any]:
        await self.send(json.dumps(fields).encode() + b"\n")
        reply = await self.line()
        assert reply is not None
        return reply


async def connect(service: Service) -> Client:
    return Client(await trio.open_unix_socket(service.config.control.socket))


@pytest.fixture
async def running(short_dir: Path) -> AsyncIterator[tuple[Service, FakeRunner]]:
    runner = FakeRunner(step_seconds=0.05)
    config = make_config(short_dir, control={"read_timeout": 1.0, "max_clients": 4})
    service = Service(config, runner)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: service.run(handle_signals=False, task_status=task_status)
        )
        yield service, runner
        nursery.cancel_scope.cancel()


def _tmp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


async def test_socket_is_private(running: tuple[Service, FakeRunner]) -> None:
    service, _ = running
    mode = os.stat(service.config.control.socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


async def test_status(running: tuple[Service, FakeRunner]) -> None:
    service, _ = running
    client = await connect(service)
    reply = await client.request(id=1, command="status")
    assert reply["ok"] is True and reply["id"] == 1
    assert reply["result"]["pid"] == os.getpid()
    assert reply["result"]["operation"] is None


async def test_snapshot_writes_image_and_manifest(
    running: tuple[Service, FakeRunner], short_dir: Path
) -> None:
    service, _ = running
    client = await connect(service)
    reply = await client.request(id="s", command="snapshot")
    assert reply["ok"] is True, reply
    image = Path(reply["result"]["image"])
    assert image.parent == short_dir / "snaps"
    assert image.name.startswith("manual-")
    assert image.read_bytes() == IMAGE.read_bytes()
    assert list(read_image([image.read_bytes()], "xen-4.17"))
    assert json.loads(Path(reply["result"]["manifest"]).read_text())["size"] == image.stat().st_size
    status = await client.request(command="status")
    assert status["result"]["last_snapshot"]["image"] == str(image)


async def test_garbage_gets_an_error_and_the_connection_stays_usable(
    running: tuple[Service, FakeRunner],
) -> None:
    service, runner = running
    client = await connect(service)
    for garbage in (b"hello\n", b"\x00\xff\xfe\n", b"[]\n", b'{"command": "rm -rf"}\n'):
        await client.send(garbage)
        reply = await client.line()
        assert reply is not None and reply["ok"] is False, garbage
    assert (await client.request(command="status"))["ok"] is True
    assert runner.calls == 0


async def test_overlong_line_is_refused_and_closed(running: tuple[Service, FakeRunner]) -> None:
    service, _ = running
    client = await connect(service)
    await client.send(b"x" * 70000)
    reply = await client.line()
    assert reply is not None and "longer than" in reply["error"]
    assert await client.line() is None
    assert (await (await connect(service)).request(command="status"))["ok"] is True


async def test_incomplete_request_times_out(running: tuple[Service, FakeRunner]) -> None:
    service, _ = running
    client = await connect(service)
    await client.send(b'{"command": "sta')
    reply = await client.line(timeout=5)
    assert reply is not None and reply["error"] == "incomplete request after 1 s"
    assert await client.line() is None


async def test_disconnect_mid_request_harms_nothing(
    running: tuple[Service, FakeRunner], short_dir: Path
) -> None:
    service, runner = running
    half = await connect(service)
    await half.send(b'{"command": "snap')
    await half.stream.aclose()
    output = short_dir / "gone.img"
    leaver = await connect(service)
    await leaver.send(json.dumps({"command": "snapshot", "output": str(output)}).encode() + b"\n")
    # The service has the request before the client leaves.
    await wait_until_async(lambda: bool(runner.active or output.exists()), 10, "the snapshot")
    await leaver.stream.aclose()
    # The operation still completes, and the service keeps answering.
    client = await connect(service)

    def finished() -> bool:
        return output.exists() and runner.active == 0

    await wait_until_async(finished, 10, "the snapshot to finish")
    assert output.read_bytes() == IMAGE.read_bytes()
    assert (await client.request(command="status"))["result"]["counters"]["snapshots"] == 1


async def test_concurrent_requests_are_serialised(
    running: tuple[Service, FakeRunner], short_dir: Path
) -> None:
    service, runner = running
    replies: list[dict[str, Any]] = []

    async def one(index: int) -> None:
        client = await connect(service)
        output = str(short_dir / f"c{index}.img")
        replies.append(await client.request(id=index, command="snapshot", output=output))

    async with trio.open_nursery() as nursery:
        for index in range(4):
            nursery.start_soon(one, index)
    assert sorted(r["id"] for r in replies if r["ok"]) == [0, 1, 2, 3]
    assert runner.calls == 4
    assert runner.max_active == 1


async def test_deadline_cancels_and_leaves_no_partial_file(
    running: tuple[Service, FakeRunner], short_dir: Path
) -> None:
    service, runner = running
    runner.step_seconds = 1.0
    output = short_dir / "late.img"
    client = await connect(service)
    reply = await client.request(command="snapshot", output=str(output), deadline=0.3)
    assert reply == {"id": None, "ok": False, "error": "snapshot: deadline of 0.3 s exceeded"}
    assert not output.exists()
    assert _tmp_files(short_dir) == []
    assert (await client.request(command="status"))["result"]["operation"] is None


async def test_too_many_clients_are_refused(running: tuple[Service, FakeRunner]) -> None:
    service, _ = running
    held = [await connect(service) for _ in range(4)]
    extra = await connect(service)
    reply = await extra.line()
    assert reply is not None and reply["error"] == "too many control clients; try later"
    await held[0].stream.aclose()
    await settled()  # the service has seen the close: a slot is free
    assert (await (await connect(service)).request(command="status"))["ok"]


async def test_stale_socket_is_replaced_but_a_live_one_is_not(short_dir: Path) -> None:
    path = str(short_dir / "ctl.sock")
    live = bind_control_socket(path)
    with pytest.raises(ControlSocketError, match="another process is listening there"):
        bind_control_socket(path)
    live.close()  # the file stays behind, as after a crash
    again = bind_control_socket(path)
    again.close()
    Path(path).unlink()
    Path(path).write_text("not a socket")
    with pytest.raises(ControlSocketError, match="exists and is not a socket"):
        bind_control_socket(path)


def test_socket_refuses_connect_by_other_users_by_mode(short_dir: Path) -> None:
    sock = bind_control_socket(str(short_dir / "c.sock"))
    try:
        assert stat.S_IMODE(os.stat(short_dir / "c.sock").st_mode) == 0o600
        assert sock.family == socket.AF_UNIX
    finally:
        sock.close()


async def test_queued_snapshots_get_distinct_names(running: tuple[Service, FakeRunner]) -> None:
    service, runner = running
    runner.step_seconds = 0.01
    replies: list[dict[str, Any]] = []

    async def one() -> None:
        replies.append(await (await connect(service)).request(command="snapshot"))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert all(r["ok"] for r in replies), replies
    images = {r["result"]["image"] for r in replies}
    assert len(images) == 3
    assert all(Path(image).read_bytes() == IMAGE.read_bytes() for image in images)


async def test_existing_output_needs_force(
    running: tuple[Service, FakeRunner], short_dir: Path
) -> None:
    service, _ = running
    output = short_dir / "there.img"
    output.write_bytes(b"old")
    client = await connect(service)
    reply = await client.request(command="snapshot", output=str(output))
    assert reply["ok"] is False
    assert reply["error"] == (
        f"snapshot to {output} failed: {output}: exists (use --force to replace it)"
    )
    assert output.read_bytes() == b"old"
    assert (await client.request(command="snapshot", output=str(output), force=True))["ok"]
    assert output.read_bytes() == IMAGE.read_bytes()
    status = (await client.request(command="status"))["result"]
    assert status["counters"] == {"snapshots": 1, "failed": 1, "pruned": 0, "live_updates": 0}


async def test_reload_request_without_a_file_keeps_running(
    running: tuple[Service, FakeRunner],
) -> None:
    service, _ = running
    client = await connect(service)
    reply = await client.request(id=9, command="reload")
    assert reply == {
        "id": 9,
        "ok": False,
        "error": "reload failed, keeping the running configuration: "
        "started without a configuration file",
    }
    assert (await client.request(command="status"))["ok"] is True
