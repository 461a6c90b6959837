"""Where the image bytes go: a file (atomically), standard output, or a listening successor.

Every sink is an async context manager from ``open_sink``: leaving the block normally
completes the stream (the file is renamed into place, the socket is closed after END);
leaving it with an exception -- a failed source, disk full, SIGTERM turned into a
cancellation, KeyboardInterrupt -- leaves nothing behind at the target path.

The file sink is ``imagefile.atomic_output`` (temporary file in the same directory, fsync,
rename or link, fsync of the directory): one implementation of atomic writing for the whole
project. Its writes are ordinary blocking writes of at most ``writer.FLUSH_SIZE`` bytes.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO, Protocol

import trio

from ..imagefile import ImageFileError, atomic_output, check_writable_target
from .errors import RewindImpossibleError, SinkError
from .manifest import manifest_path

UNIX_PREFIX = "unix:"
STDOUT = "-"


class Sink(Protocol):
    #: How messages and the manifest name the destination.
    name: str

    async def write(self, data: bytes) -> None: ...

    async def rewind(self) -> None: ...


class FileSink:
    def __init__(self, path: str, out: BinaryIO) -> None:
        self.name = path
        self._out = out

    async def write(self, data: bytes) -> None:
        try:
            self._out.write(data)
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write: {exc.strerror or exc}") from None
        await trio.lowlevel.checkpoint()

    async def rewind(self) -> None:
        self._out.seek(0)
        self._out.truncate()


class StdoutSink:
    name = "<stdout>"

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._written = 0

    async def write(self, data: bytes) -> None:
        try:
            self._out.write(data)
        except BrokenPipeError:
            raise SinkError("<stdout>: the reader closed the pipe") from None
        except OSError as exc:
            raise SinkError(f"<stdout>: cannot write: {exc.strerror or exc}") from None
        self._written += len(data)
        await trio.lowlevel.checkpoint()

    async def rewind(self) -> None:
        if self._written == 0:
            return
        try:
            self._out.flush()
            self._out.seek(0)
            self._out.truncate()
        except (OSError, ValueError):
            raise RewindImpossibleError(
                f"<stdout>: the snapshot must restart but {self._written} bytes were already "
                "sent down a pipe; write to a file or retry when the store is quieter"
            ) from None
        self._written = 0


class UnixSink:
    """Streams to a successor listening on a unix socket while the source is still reading.

    A restart closes the connection without END (the successor must discard an unfinished
    stream, as any reader of a truncated image does) and connects again.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.name = f"{UNIX_PREFIX}{path}"
        self.timeout = timeout
        self._stream: trio.SocketStream | None = None
        self._sent = 0

    async def connect(self) -> None:
        try:
            with trio.fail_after(self.timeout):
                self._stream = await trio.open_unix_socket(self.path)
        except trio.TooSlowError:
            raise SinkError(
                f"{self.name}: no successor accepted within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot connect: {exc.strerror or exc}") from None
        self._sent = 0

    async def write(self, data: bytes) -> None:
        assert self._stream is not None
        try:
            with trio.fail_after(self.timeout):
                await self._stream.send_all(data)
        except trio.TooSlowError:
            raise SinkError(
                f"{self.name}: successor took no data for {self.timeout:g} s "
                f"after {self._sent} bytes"
            ) from None
        except (trio.BrokenResourceError, OSError):
            raise SinkError(
                f"{self.name}: successor closed the connection after {self._sent} bytes"
            ) from None
        self._sent += len(data)

    async def rewind(self) -> None:
        await self.aclose()
        await self.connect()

    async def aclose(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with trio.CancelScope(shield=True):
                await stream.aclose()


def check_output_target(path: str, *, force: bool) -> None:
    """Refuse an existing FILE (or its manifest) before any work; ImageFileError names it."""
    if path == STDOUT or path.startswith(UNIX_PREFIX):
        return
    for candidate in (path, manifest_path(path)):
        check_writable_target(candidate, force=force)


@asynccontextmanager
async def open_file_sink(path: str, *, force: bool) -> AsyncIterator[FileSink]:
    try:
        with atomic_output(path, force=force) as out:
            yield FileSink(path, out)
    except ImageFileError as exc:
        raise SinkError(str(exc)) from None


@asynccontextmanager
async def open_stdout_sink() -> AsyncIterator[StdoutSink]:
    sink = StdoutSink(sys.stdout.buffer)
    yield sink
    try:
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise SinkError("<stdout>: the reader closed the pipe") from None


@asynccontextmanager
async def open_unix_sink(path: str, *, timeout: float) -> AsyncIterator[UnixSink]:
    sink = UnixSink(path, timeout)
    await sink.connect()
    try:
        yield sink
    finally:
        await sink.aclose()
