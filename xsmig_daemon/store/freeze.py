"""The introspection freeze, as pure state: who froze the daemon, until when, and the image.

``FreezeState`` holds one freeze at a time: the connection that asked for it (the only one
the daemon keeps serving), when it started and the deadline after which it ends by itself.
Times are plain floats from the caller's clock; nothing here waits or reads a clock.

``ImageChunks`` turns the engine's state into migration-stream bytes handed out in pieces of
at most ``size`` bytes, encoding records lazily: memory stays bounded by one record plus one
piece whatever the store size. It reads the live engine, so the engine must not change until
the last piece is out -- that is what the freeze guarantees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..image.encoder import encode_image
from ..image.records import Header
from .connection import Connection
from .engine import Engine
from .errors import XsError
from .image_state import state_records

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
        return self._current is not None and conn is not self._current.owner

    def expired(self, now: float) -> bool:
        return self._current is not None and now >= self._current.deadline

    def freeze(self, engine: Engine, owner: Connection, now: float, deadline_ms: int) -> None:
        if self._current is not None:
            raise XsError("EBUSY", f"already frozen by {self._current.owner!r}")
        if not 0 < deadline_ms <= DEADLINE_MAX_MS:
            raise XsError("EINVAL", f"freeze deadline {deadline_ms} ms not in 1..{DEADLINE_MAX_MS}")
        image = ImageChunks(engine, skip=owner)
        self._current = _Freeze(owner, now, now + deadline_ms / 1000, image)

    def read(self, conn: Connection, size: int) -> bytes:
        """The next piece of the image for the freezing connection; b"" once it is complete."""
        current = self._current
        if current is None or conn is not current.owner:
            raise XsError("EINVAL", f"{conn!r} holds no freeze")
        return current.image.next_piece(size)

    def thaw(self, now: float) -> float:
        """End the freeze; returns how long it lasted (0 if there was none)."""
        current, self._current = self._current, None
        return 0.0 if current is None else now - current.started


class ImageChunks:
    """The engine's state as stream bytes (header ... END), in pieces on demand."""

    def __init__(self, engine: Engine, *, skip: Connection | None = None) -> None:
        self._parts = self._encode(engine, skip)
        self._buffer = bytearray()
        self._done = False

    @staticmethod
    def _encode(engine: Engine, skip: Connection | None) -> Iterator[bytes]:
        return encode_image(
            state_records(engine, skip=() if skip is None else (skip,)), IMAGE_HEADER
        )

    def next_piece(self, size: int) -> bytes:
        while len(self._buffer) < size and not self._done:
            part = next(self._parts, None)
            if part is None:
                self._done = True
            else:
                self._buffer += part
        piece = bytes(self._buffer[:size])
        del self._buffer[:size]
        return piece
