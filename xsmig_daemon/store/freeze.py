"""The introspection freeze, as pure state: who froze the daemon, until when, and the image.

``FreezeState`` holds one freeze at a time: the connection that asked for it (the only one
the daemon keeps serving), when it started and the deadline after which it ends by itself.
Times are plain floats from the caller's clock; nothing here waits or reads a clock.

``ImageChunks`` turns the engine's state into migration-stream bytes handed out in pieces of
at most ``size`` bytes. By default it encodes records lazily, so memory stays bounded by one
record plus one piece whatever the store size; it reads the live engine, so the engine must
not change until the last piece is out -- that is what a ``stream`` freeze guarantees. A
``capture`` freeze encodes the whole image at once instead and ends the freeze right away:
a short freeze for the price of the image's size in memory until it has been read. A
``snapshot`` freeze copies only what is not the tree (connections, watches, transactions,
domains: small), ends at once too, and reads the tree copy-on-write (store/snapshot.py):
the freeze does not grow with the store, memory holds one pre-image per node changed
while the image is read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from ..image.encoder import encode_image
from ..image.records import Header, Record
from . import snapshot
from .connection import Connection
from .engine import Engine
from .errors import XsError
from .image_state import head_records, state_records, tail_records

#: The image is encoded as a version 2 stream: it holds watch depths, domain features and
#: unique ids, which version 1 cannot carry. The exporter converts it for its target.
IMAGE_HEADER = Header(2, False)
#: Longest freeze an exporter may ask for (ms); a dom0 must never stay frozen for long.
DEADLINE_MAX_MS = 60_000


@dataclass(slots=True)
class _Freeze:
    owner: Connection
    started: float
    deadline: float
    image: ImageChunks
    #: False once a ``capture`` freeze has its image: the daemon runs again, the owner reads.
    frozen: bool = True
    duration: float | None = None


class FreezeState:
    def __init__(self) -> None:
        self._current: _Freeze | None = None

    @property
    def owner(self) -> Connection | None:
        return self._current.owner if self._current is not None else None

    @property
    def deadline(self) -> float:
        return self._current.deadline if self._current is not None else float("inf")

    def frozen_for(self, conn: Connection | None) -> bool:
        """True while ``conn`` (None: the daemon's listeners) must wait."""
        current = self._current
        return current is not None and current.frozen and conn is not current.owner

    def expired(self, now: float) -> bool:
        # Only a frozen daemon is at stake: once a capture has its copy the daemon runs
        # again, and the owner's reading of the copy is not held against the deadline.
        return self._current is not None and self._current.frozen and now >= self._current.deadline

    def check(self, deadline_ms: int) -> None:
        """Raise the error ``freeze`` would raise now, changing nothing."""
        if self._current is not None:
            raise XsError("EBUSY", f"already frozen by {self._current.owner!r}")
        if not 0 < deadline_ms <= DEADLINE_MAX_MS:
            raise XsError("EINVAL", f"freeze deadline {deadline_ms} ms not in 1..{DEADLINE_MAX_MS}")

    def freeze(
        self,
        engine: Engine,
        owner: Connection,
        now: float,
        deadline_ms: int,
        *,
        records: Iterable[Record] | None = None,
    ) -> None:
        """Freeze for ``owner``; the image is the whole state, or ``records`` if given."""
        self.check(deadline_ms)
        image = ImageChunks(engine, skip=owner, records=records)
        self._current = _Freeze(owner, now, now + deadline_ms / 1000, image)

    def capture(self) -> None:
        """Encode the whole image now; ``captured`` then ends the freeze."""
        assert self._current is not None
        self._current.image.capture()

    def snapshot(self) -> None:
        """Copy-on-write: keep everything but the tree now, the tree's pre-images from now
        on; ``captured`` then ends the freeze and the owner reads that instant's state."""
        assert self._current is not None
        self._current.image.snapshot()

    def captured(self, now: float) -> None:
        """The image is copied: the daemon runs again, the owner reads the copy."""
        assert self._current is not None
        self._current.frozen = False
        self._current.duration = now - self._current.started

    def read(self, conn: Connection, size: int) -> bytes:
        """The next piece of the image for the freezing connection; b"" once it is complete."""
        current = self._current
        if current is None or conn is not current.owner:
            raise XsError("EINVAL", f"{conn!r} holds no freeze")
        return current.image.next_piece(size)

    def thaw(self, now: float) -> float:
        """End the freeze (drop a captured image); returns how long the daemon was frozen."""
        current, self._current = self._current, None
        if current is None:
            return 0.0
        current.image.close()
        return current.duration if current.duration is not None else now - current.started


class ImageChunks:
    """The engine's state as stream bytes (header ... END), in pieces on demand."""

    def __init__(
        self,
        engine: Engine,
        *,
        skip: Connection | None = None,
        records: Iterable[Record] | None = None,
    ) -> None:
        self._engine = engine
        self._skipped = () if skip is None else (skip,)
        if records is None:
            records = state_records(engine, skip=self._skipped)
        self._parts = encode_image(records, IMAGE_HEADER)
        self._buffer = bytearray()
        self._offset = 0
        self._done = False
        self._snapshot = False

    def snapshot(self) -> None:
        """Everything but the tree copied now (small), the tree read copy-on-write later."""
        engine = self._engine
        head = list(head_records(engine, skip=self._skipped))
        tail = list(tail_records(engine))
        snapshot.begin(engine.tree)
        self._snapshot = True
        records = itertools.chain(head, snapshot.tree_records(engine.tree), tail)
        self._parts = encode_image(records, IMAGE_HEADER)

    def close(self) -> None:
        """Stop reading: drop a snapshot's pre-images."""
        if self._snapshot:
            snapshot.end(self._engine.tree)
            self._snapshot = False

    def capture(self) -> None:
        """Encode everything left now (the engine may change afterwards)."""
        for part in self._parts:
            self._buffer += part
        self._done = True

    def next_piece(self, size: int) -> bytes:
        while len(self._buffer) - self._offset < size and not self._done:
            part = next(self._parts, None)
            if part is None:
                self._done = True
                self.close()
            else:
                del self._buffer[: self._offset]
                self._offset = 0
                self._buffer += part
        piece = bytes(self._buffer[self._offset : self._offset + size])
        self._offset += len(piece)
        return piece
