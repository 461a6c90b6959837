"""Move one guest's xenstore state between two running daemons (``xsmig migrate``) or load a
migration image into one (``xsmig migrate-in``).

The order makes every failure leave both ends consistent (docs/migrate.md):

1. the destination is asked to prepare (an xsmig mock opens an import; a C daemon is
   checked: the domid must be free) -- nothing is frozen yet;
2. between two mocks, the domain's nodes are pre-copied while the guest runs
   (``migrate precopy``) and staged at the destination (``import stage``);
3. the source is frozen and its domain's stream read (``CONTROL migrate export``, without
   the nodes if none changed since the pre-copy; a consistent wire read on a C daemon,
   which cannot be frozen);
4. the destination takes the stream in one step, or refuses it and changes nothing; on a
   refusal or a lost destination the source is thawed untouched (``migrate abort``);
5. the source releases the domain (``migrate release``; RELEASE on a C daemon) and thaws.

The guest's downtime runs from the freeze (3) to the destination's answer (4).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

import trio

from ..client import ClientError, PendingReply, Request, Xenstore, XenstoreError
from ..image.encoder import encode_image
from ..image.errors import ImageError
from ..image.pipeline import read_image
from ..image.records import Header, Record
from ..imagefile import ImageFileError, read_chunks
from ..store.migration import ImportRefusedError, stream_domid
from ..wire.ops import Op
from .errors import ExportError
from .introspect import answers_introspect

#: ``migrate import data`` carries this many stream bytes (payload limit minus the prefix).
_DATA_PREFIX = b"migrate\0import\0data\0"
PIECE = 4096 - len(_DATA_PREFIX) - 1
WINDOW = 64
_READ = Request(Op.CONTROL, b"introspect\0read\0")
DEFAULT_FREEZE_DEADLINE = 10.0
STREAM_HEADER = Header(2, False)

#: Receives the stream's bytes piece by piece while the source is read.
Forward = Callable[[bytes], Awaitable[None]]
#: A test (or a caller) may act after each phase: "prepared", "precopied" (mock to mock),
#: "exported", "imported".
Checkpoint = Callable[[str], Awaitable[None]]


class MigrationError(ExportError):
    """The migration failed; the message says what happened at each end."""


class RefusedError(MigrationError):
    """The destination refused the stream and changed nothing."""


class Stream:
    """One domain's migration stream: its bytes, and its validated records when asked for
    (between two mocks the destination validates; the driver only forwards the bytes)."""

    def __init__(
        self,
        data: bytes,
        where: str,
        *,
        domid: int | None = None,
        records: list[Record] | None = None,
    ) -> None:
        self.data = data
        self.where = where
        #: The stream leaves out the nodes: the destination has them staged (pre-copy).
        self.staged = False
        #: A mock source's verdicts on the guest's open transactions (store/txfate.py),
        #: passed on to a mock destination's commit as they are.
        self.fates: list[bytes] = []
        self._domid = domid
        self._records = records

    @classmethod
    def from_records(cls, records: list[Record], where: str) -> Stream:
        data = b"".join(encode_image(records, STREAM_HEADER))
        return cls(data, where, records=records)

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            try:
                self._records = [item.record for item in read_image([self.data], migration=True)]
            except ImageError as exc:
                raise MigrationError(f"{self.where}: invalid migration stream: {exc}") from None
        return self._records

    @property
    def record_count(self) -> int | None:
        return None if self._records is None else len(self._records)

    @property
    def domid(self) -> int:
        if self._domid is None:
            try:
                self._domid = stream_domid(self.records)
            except ImportRefusedError as exc:
                raise MigrationError(f"{self.where}: {exc}") from None
        return self._domid


@dataclass(slots=True)
class Outcome:
    source_domid: int
    domid: int
    image_bytes: int
    #: Records in the stream (None: forwarded between mocks without decoding).
    records: int | None
    #: Source freeze -> the destination serving the domain (None: nothing was frozen).
    downtime: float | None
    #: How long the source daemon was frozen in all (through the release).
    source_frozen: float | None
    notes: list[str] = field(default_factory=list)


class SourceEnd(Protocol):
    location: str

    async def export(self, domid: int | None) -> Stream: ...

    async def release(self, domid: int) -> None: ...

    async def abort(self) -> None: ...


class DestinationEnd(Protocol):
    location: str

    async def prepare(self, domid: int | None) -> None: ...

    async def load(self, stream: Stream, domid: int) -> list[str]: ...


# -- the mock's CONTROL migrate ---------------------------------------------------------------


class MockSource:
    """An xsmig mock: frozen by ``migrate export``, released by ``migrate release``."""

    def __init__(self, xs: Xenstore, location: str, freeze_deadline: float) -> None:
        self.xs = xs
        self.location = location
        self.freeze_deadline = freeze_deadline

    async def precopy(self, domid: int, forward: Forward) -> None:
        """The domain's nodes while the guest still runs (``migrate precopy``), forwarded."""
        deadline_ms = max(1, round(self.freeze_deadline * 1000))
        try:
            await self.xs.control("migrate", "precopy", str(domid), str(deadline_ms))
        except XenstoreError as exc:
            raise self._refused(domid, exc) from None
        await self._read(forward)
        await self.xs.control("introspect", "thaw")

    def _refused(self, domid: int, exc: XenstoreError) -> MigrationError:
        if exc.name == "ENOENT":
            return MigrationError(f"source {self.location}: domain {domid} is not introduced there")
        if exc.name == "E2BIG":
            return MigrationError(
                f"source {self.location}: domain {domid} has more unread input than a stream "
                "holds (64 KiB); it stays at the source, which answers it"
            )
        return MigrationError(f"source {self.location}: export refused: {exc}")

    async def export(
        self, domid: int | None, forward: Forward | None = None, *, since_precopy: bool = False
    ) -> Stream:
        """Freeze and read the stream; ``forward`` gets each piece as it arrives (so a mock
        destination decodes while the rest is still being read)."""
        assert domid is not None
        deadline_ms = max(1, round(self.freeze_deadline * 1000))
        since = ("since-precopy",) if since_precopy else ()
        try:
            reply = await self.xs.control("migrate", "export", str(domid), str(deadline_ms), *since)
        except XenstoreError as exc:
            raise self._refused(domid, exc) from None
        stream = Stream(await self._read(forward), f"source {self.location}", domid=domid)
        words = reply.rstrip(b"\0").split(b" ")[1:]
        if since_precopy and words:
            stream.staged = words.pop(0) == b"unchanged"
        stream.fates = words
        return stream

    async def _read(self, forward: Forward | None) -> bytes:
        conn = self.xs.conn
        pieces: list[bytes] = []
        pending = list(await conn.submit_many([_READ] * WINDOW))
        while pending:
            piece = await pending.pop(0).payload()
            if not piece:
                for rest in pending:
                    await rest.payload()
                break
            pieces.append(piece)
            if forward is not None:
                await forward(piece)
            if len(pending) < WINDOW // 2:
                pending.extend(await conn.submit_many([_READ] * WINDOW))
        return b"".join(pieces)

    async def release(self, domid: int) -> None:
        try:
            await self.xs.control("migrate", "release", str(domid))
        except XenstoreError as exc:
            if exc.name != "EAGAIN":
                raise
            # The freeze ended at its deadline after the export: the domain is at the
            # destination now, so it must not go on here either.
            await self.xs.release(domid)
            raise MigrationError(
                f"source {self.location}: its freeze ended at the {self.freeze_deadline:g} s "
                f"deadline before the release; domain {domid} was released there with RELEASE, "
                "changes made at the source after the deadline are not at the destination "
                "(raise --freeze-deadline)"
            ) from None

    async def abort(self) -> None:
        await self.xs.control("migrate", "abort")


class MockDestination:
    """An xsmig mock: ``migrate import begin``, pipelined ``data``, ``commit``."""

    def __init__(self, xs: Xenstore, location: str) -> None:
        self.xs = xs
        self.location = location
        self._buffer = bytearray()
        self._sent = 0
        self._handles: list[PendingReply] = []

    async def send_piece(self, piece: bytes) -> None:
        """Send stream bytes now, in ``data`` requests whose replies ``load`` collects."""
        self._buffer += piece
        if len(self._buffer) >= PIECE:
            await self._submit(len(self._buffer) - len(self._buffer) % PIECE)

    async def _submit(self, size: int) -> None:
        data, self._buffer = bytes(self._buffer[:size]), self._buffer[size:]
        self._sent += len(data)
        requests = [
            Request(Op.CONTROL, _DATA_PREFIX + data[at : at + PIECE] + b"\0")
            for at in range(0, len(data), PIECE)
        ]
        self._handles.extend(await self.xs.conn.submit_many(requests))

    async def prepare(self, domid: int | None) -> None:
        args = () if domid is None else (str(domid),)
        try:
            await self.xs.control("migrate", "import", "begin", *args)
        except XenstoreError as exc:
            raise MigrationError(f"destination {self.location}: import refused: {exc}") from None

    async def load(self, stream: Stream, domid: int) -> list[str]:
        if not self._sent:
            self._buffer = bytearray(stream.data)
        await self._finish_stream(_commit(stream.staged, stream.fates))
        return []

    async def stage(self) -> None:
        """End the pre-copy stream: the destination plans it now (or refuses)."""
        await self._finish_stream(Request(Op.CONTROL, b"migrate\0import\0stage\0"))

    async def _finish_stream(self, last: Request) -> None:
        if self._buffer:
            await self._submit(len(self._buffer))
        handles = [*self._handles, *await self.xs.conn.submit_many([last])]
        self._handles, self._sent = [], 0
        for handle in handles[:-1]:
            await handle.payload()
        answer = (await handles[-1].payload()).rstrip(b"\0").decode("utf-8", "replace")
        if answer != "OK":
            raise RefusedError(f"destination {self.location}: {answer}")


def _commit(staged: bool, fates: list[bytes]) -> Request:
    words = [b"migrate", b"import", b"commit", *([b"staged"] if staged else []), *fates]
    return Request(Op.CONTROL, b"".join(word + b"\0" for word in words))


# -- an image file as the source (migrate-in) -------------------------------------------------


class FileSource:
    def __init__(self, path: str) -> None:
        self.location = path

    async def export(self, domid: int | None) -> Stream:
        del domid
        try:
            data = b"".join(read_chunks(self.location))
        except ImageFileError as exc:
            raise MigrationError(str(exc)) from None
        stream = Stream(data, self.location)
        stream.records  # noqa: B018 -- validated here: a bad file fails before the destination
        return stream

    async def release(self, domid: int) -> None:
        del domid

    async def abort(self) -> None:
        pass


# -- the driver -------------------------------------------------------------------------------


async def no_checkpoint(phase: str) -> None:
    del phase


async def run_migration(
    source: SourceEnd,
    destination: DestinationEnd,
    domid: int | None,
    new_domid: int | None,
    *,
    checkpoint: Checkpoint = no_checkpoint,
) -> Outcome:
    """Steps 1-5 of the module doc; raises MigrationError saying where each end stands."""
    await destination.prepare(new_domid)
    await checkpoint("prepared")
    if isinstance(source, MockSource) and isinstance(destination, MockDestination):
        stream, started = await _between_mocks(source, destination, domid, checkpoint)
    else:
        started = trio.current_time()
        stream = await source.export(domid)
    exported = stream.domid
    target = new_domid if new_domid is not None else exported
    await checkpoint("exported")
    try:
        notes = await destination.load(stream, target)
    except (RefusedError, ClientError, MigrationError) as exc:
        await _abort(source)
        raise MigrationError(f"{exc}; domain {exported} stays at the source") from None
    served = trio.current_time()
    await checkpoint("imported")
    try:
        await source.release(exported)
    except ClientError as exc:
        raise MigrationError(
            f"domain {exported} is at the destination as {target}, but the source "
            f"{source.location} did not confirm its release ({exc})"
        ) from None
    released = trio.current_time()
    frozen = isinstance(source, MockSource)
    return Outcome(
        exported,
        target,
        len(stream.data),
        stream.record_count,
        served - started if frozen else None,
        released - started if frozen else None,
        notes,
    )


async def _between_mocks(
    source: MockSource, destination: MockDestination, domid: int | None, checkpoint: Checkpoint
) -> tuple[Stream, float]:
    """Pre-copy, then freeze and export; the stream goes to the destination as it is read.
    Returns the stream and when the source was asked to freeze."""
    assert domid is not None
    try:
        await source.precopy(domid, destination.send_piece)
        await destination.stage()
    except (ClientError, RefusedError) as exc:
        raise MigrationError(f"{exc}; domain {domid} stays at the source") from None
    await checkpoint("precopied")
    started = trio.current_time()
    try:
        stream = await source.export(domid, destination.send_piece, since_precopy=True)
    except ClientError as exc:
        await _abort(source)
        raise MigrationError(f"{exc}; domain {domid} stays at the source") from None
    return stream, started


async def _abort(source: SourceEnd) -> None:
    with suppress(ClientError):
        # A lost source thaws by itself (its freezing connection closes, or the deadline).
        await source.abort()


async def is_mock(path: str, timeout: float) -> bool:
    try:
        return await answers_introspect(path, timeout)
    except ClientError as exc:
        raise MigrationError(str(exc)) from None
