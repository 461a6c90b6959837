"""ImageWriter and the sinks without any daemon: rewind, validation, atomic file behaviour."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from xsmig_daemon.export.errors import RewindImpossibleError, SinkError
from xsmig_daemon.export.sinks import StdoutSink, open_file_sink, open_unix_sink
from xsmig_daemon.export.writer import ImageWriter
from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.errors import ImageError
from xsmig_daemon.image.profiles import get_profile
from xsmig_daemon.image.records import ConnectionData, GlobalData, Header, NodeData, RingSpec


class MemorySink:
    name = "<memory>"

    def __init__(self) -> None:
        self.data = bytearray()
        self.rewinds = 0

    async def write(self, data: bytes) -> None:
        self.data += data

    async def rewind(self) -> None:
        self.data.clear()
        self.rewinds += 1


async def test_rewind_starts_the_stream_over() -> None:
    sink = MemorySink()
    writer = ImageWriter(sink, Header(1), get_profile("spec"))
    await writer.write(NodeData("/"))
    await writer.write(NodeData("/stale"))
    await writer.rewind()
    await writer.write(NodeData("/"))
    await writer.write(NodeData("/fresh", b"v"))
    stats = await writer.finish()
    header, located = decode_image(bytes(sink.data))
    assert header == Header(1)
    assert [item.record for item in located] == [
        NodeData("/"),
        NodeData("/fresh", b"v"),
        located[-1].record,
    ]
    assert sink.rewinds == 1
    assert stats.size == len(sink.data)
    assert stats.records == {"NODE_DATA": 2, "END": 1}


async def test_records_are_checked_against_the_target_as_they_are_written() -> None:
    writer = ImageWriter(MemorySink(), Header(1), get_profile("xen-4.17"))
    await writer.write(GlobalData(-1, 3))
    with pytest.raises(ImageError, match="dom0's ring"):
        await writer.write(NodeData("/"))
    ok = ImageWriter(MemorySink(), Header(1), get_profile("xen-4.17"))
    await ok.write(GlobalData(-1, 3))
    await ok.write(ConnectionData(1, RingSpec(0)))
    await ok.write(NodeData("/"))
    await ok.finish()


async def test_stdout_pipe_cannot_rewind_but_a_file_can(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    with open(write_end, "wb", buffering=0) as pipe, open(read_end, "rb"):
        sink = StdoutSink(pipe)
        await sink.write(b"abc")
        with pytest.raises(RewindImpossibleError, match="3 bytes were already sent"):
            await sink.rewind()
    with open(tmp_path / "out", "w+b") as regular:
        file_sink = StdoutSink(regular)
        await file_sink.write(b"abc")
        await file_sink.rewind()
        await file_sink.write(b"z")
    assert (tmp_path / "out").read_bytes() == b"z"


async def test_file_sink_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    target = tmp_path / "x.img"
    with pytest.raises(RuntimeError):
        async with open_file_sink(str(target), force=False) as sink:
            await sink.write(b"partial")
            raise RuntimeError("source failed")
    assert list(tmp_path.iterdir()) == []
    async with open_file_sink(str(target), force=False) as sink:
        await sink.write(b"complete")
    assert target.read_bytes() == b"complete"
    with pytest.raises(SinkError, match="exists"):
        async with open_file_sink(str(target), force=False) as sink:
            await sink.write(b"other")
    assert target.read_bytes() == b"complete"


async def test_unix_sink_without_a_listener_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=r"^unix:.*nobody: cannot connect: "):
        async with open_unix_sink(str(tmp_path / "nobody"), timeout=1):
            pass


async def test_unix_sink_times_out_when_the_successor_stops_reading(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(path)
    listener.listen(1)
    with (
        trio.fail_after(10),
        listener,
        pytest.raises(SinkError, match=r"took no data for 0\.3 s"),
    ):
        async with open_unix_sink(path, timeout=0.3) as sink:
            conn, _ = await listener.accept()
            with conn:
                for _ in range(1000):
                    await sink.write(b"x" * 65536)
