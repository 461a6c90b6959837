"""The introspect exporter waits for the freeze reply as long as the freeze may last.

A ``capture`` freeze encodes the whole image before the daemon answers; at 1,000,000 nodes
on a loaded machine that took longer than the 10 s request timeout, so the export failed
although the 30 s freeze deadline had not passed. Here a fake daemon answers the freeze
after a delay, on virtual time (trio's autojump clock): no real waiting.
"""

from __future__ import annotations

import socket
from pathlib import Path

import trio
import trio.testing

from xsmig_daemon.export import Destination, ExportPlan, run_export
from xsmig_daemon.export.errors import SourceError
from xsmig_daemon.export.introspect import IntrospectSource
from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.profiles import get_profile
from xsmig_daemon.image.records import Header
from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message
from xsmig_daemon.wire.ops import Op

IMAGE = (Path(__file__).resolve().parents[1] / "data" / "basic.img").read_bytes()
TIMEOUT = 10.0
DEADLINE = 30.0
PIECE = 4096


async def serve_one_client(listener: trio.SocketListener, freeze_delay: float) -> None:
    """Answer one exporter: the freeze after ``freeze_delay`` s, then the image in pieces."""
    stream = await listener.accept()
    decoder = MessageDecoder()
    offset = 0
    async with stream:
        while chunk := await stream.receive_some(65536):
            decoder.feed(bytes(chunk))
            while (request := decoder.next_message()) is not None:
                if request.payload.startswith(b"introspect\0freeze\0"):
                    await trio.sleep(freeze_delay)
                    await reply(stream, request, b"OK\0")
                elif request.payload == b"introspect\0read\0":
                    await reply(stream, request, IMAGE[offset : offset + PIECE])
                    offset += PIECE
                else:
                    assert request.payload == b"introspect\0thaw\0", request
                    await reply(stream, request, b"%g\0" % freeze_delay)


async def reply(stream: trio.SocketStream, request: Message, payload: bytes) -> None:
    await stream.send_all(encode_message(Op.CONTROL, request.req_id, 0, payload))


async def export_with_freeze_delay(tmp_path: Path, freeze_delay: float) -> SourceError | None:
    """Export from a fake daemon into ``tmp_path/out.img``; the export's error, if any."""
    path = str(tmp_path / "fake.sock")
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()
    error: SourceError | None = None
    async with trio.SocketListener(sock) as listener, trio.open_nursery() as nursery:
        nursery.start_soon(serve_one_client, listener, freeze_delay)
        source = IntrospectSource(
            path, timeout=TIMEOUT, freeze_deadline=DEADLINE, freeze_mode="capture"
        )
        plan = ExportPlan("live-update", get_profile("spec"), Header(2))
        try:
            await run_export(source, plan, Destination(str(tmp_path / "out.img")))
        except SourceError as exc:
            error = exc
        nursery.cancel_scope.cancel()
    return error


async def test_a_freeze_reply_slower_than_the_request_timeout_is_waited_for(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    assert await export_with_freeze_delay(tmp_path, TIMEOUT * 2) is None
    assert trio.current_time() - start >= TIMEOUT * 2  # the delay really was waited out
    _, records = decode_image((tmp_path / "out.img").read_bytes())
    _, expected = decode_image(IMAGE)
    assert len(records) == len(expected)


async def test_no_freeze_reply_within_the_deadline_fails_naming_the_wait(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    error = await export_with_freeze_delay(tmp_path, DEADLINE + TIMEOUT + 5)
    assert error is not None and f"within {DEADLINE + TIMEOUT:g} s" in str(error), error
    assert not (tmp_path / "out.img").exists()
