"""``CONTROL introspect``: the mock's frozen full-state read, and the gate of its freeze.

Protocol (docs/introspect.md): ``introspect probe`` -> ``xsmig-introspect 1``;
``introspect freeze <deadline-ms> [stream|capture|snapshot]`` -> ``OK``; ``introspect read``
-> the next 1..4096 bytes of the image, empty once it is complete; ``introspect thaw`` -> how long
the daemon was frozen, in seconds. Only the freezing connection is served while frozen.
Every other task of the server -- accepting, reading, processing, sending -- waits at
``wait_open`` before it touches the engine, so the image is the state of one instant: the
moment ``freeze`` was processed. A ``capture`` freeze encodes the image inside the
``freeze`` request itself and ends there; the reads then come from that copy. A
``snapshot`` freeze copies only what is not the tree and ends there too; the reads walk the
tree copy-on-write (store/snapshot.py) while the daemon serves, so they still see the
instant of the freeze.

The freeze ends by itself: when the freezing connection goes away (``after_freeze`` is
called for every connection that ends, and the owner's end thaws), or at its deadline.
There is no timer task: everybody who waits, waits with the deadline as a cancel point, and
the first one to wake after it thaws the daemon. With nobody waiting nothing is blocked,
and the next arrival finds the deadline passed and thaws first. A captured image is
dropped the same ways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import trio

from ..image.records import Record
from ..store.connection import Connection
from ..store.engine import Engine
from ..store.errors import XsError
from ..store.freeze import FreezeState
from ..store.wireargs import c_atoi
from ..wire import introspect as names

COMMAND = names.COMMAND.encode()
PROTOCOL = b"xsmig-introspect 1"
#: Freeze modes: read the frozen engine as the exporter asks (memory flat, frozen until the
#: thaw), or encode the whole image at once and run on (short freeze, image kept in memory).
STREAM = names.STREAM.encode()
CAPTURE = names.CAPTURE.encode()
#: Copy everything but the tree at once, read the tree copy-on-write while serving (the
#: freeze costs O(connections), not O(nodes)).
SNAPSHOT = names.SNAPSHOT.encode()
#: ``freeze <ms> [<mode>]``: where the optional mode is.
_MODE_ARG = 2
#: Image bytes per ``read`` reply: the wire's payload limit.
PIECE_SIZE = 4096


class Introspection:
    """Serves ``CONTROL introspect`` on ``engine``; the server's tasks wait at its gate."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state = FreezeState()
        self._thawed = trio.Event()
        self._thawed.set()
        self._deferred: list[Callable[[], None]] = []
        # A connection whose freeze hit its deadline: its next request learns why (EAGAIN).
        self._timed_out: Connection | None = None
        # Set while a live update holds every task (no freeze owner, no deadline).
        self._held: trio.Event | None = None
        engine.control_extensions[COMMAND] = self._control

    # -- the gate -------------------------------------------------------------------------

    async def wait_open(self, conn: Connection | None) -> None:
        """Return once ``conn`` (None: a listener) may be served."""
        while self._held is not None:
            await self._held.wait()
        while self.state.frozen_for(conn):
            with trio.move_on_at(self.state.deadline):
                await self._thawed.wait()
            self._expire_if_due()

    def hold_all(self) -> None:
        """Stop every task at the gate (a live update's freeze), until ``release_all``."""
        if self._held is None:
            self._held = trio.Event()

    def release_all(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.set()

    @property
    def held(self) -> bool:
        return self._held is not None

    def after_freeze(self, conn: Connection, action: Callable[[], None]) -> None:
        """Run ``action`` (a connection's cleanup) now, or at the thaw if frozen.

        A connection that ends during a freeze keeps its state until the thaw: the image is
        the state of the freeze's instant. The owner ending thaws at once.
        """
        self._expire_if_due()
        if self.state.owner is conn:
            self._thaw("the freezing connection closed")
        if self.state.frozen_for(conn):
            self._deferred.append(action)
        else:
            action()

    # -- CONTROL introspect ---------------------------------------------------------------

    def _control(self, conn: Connection, args: list[bytes]) -> bytes:
        command = args[0] if len(args) >= 1 else b""
        self._expire_if_due()
        if command == b"probe" and len(args) == 1:
            return PROTOCOL + b"\0"
        if conn is self._timed_out and command in (b"read", b"thaw"):
            self._timed_out = None
            raise XsError("EAGAIN", "the freeze ended at its deadline")
        if command == b"freeze" and len(args) in (2, 3):
            deadline_ms = c_atoi(args[1])
            mode = args[2] if len(args) > _MODE_ARG else STREAM
            if mode not in (STREAM, CAPTURE, SNAPSHOT):
                raise XsError("EINVAL", f"freeze mode {mode!r}")
            self.state.freeze(self.engine, conn, trio.current_time(), deadline_ms)
            self._timed_out = None
            self.engine.log.append(f"introspect: frozen by {conn!r} for at most {deadline_ms} ms")
            if mode == CAPTURE:
                # Synchronous: nothing else runs until the image is encoded.
                self.state.capture()
                self.state.captured(trio.current_time())
            elif mode == SNAPSHOT:
                # Synchronous too, but only the state beside the tree is copied.
                self.state.snapshot()
                self.state.captured(trio.current_time())
            else:
                self._thawed = trio.Event()
            return b"OK\0"
        if command == b"read" and len(args) == 1:
            return self.state.read(conn, PIECE_SIZE)
        if command == b"thaw" and len(args) == 1:
            if self.state.owner is not conn:
                raise XsError("EINVAL", f"{conn!r} holds no freeze")
            return f"{self._thaw('thaw')}".encode() + b"\0"
        raise XsError("EINVAL", f"introspect arguments {args!r}")

    def check_freeze(self, deadline_ms: int) -> None:
        """Raise the error a freeze with ``deadline_ms`` would raise now (EBUSY, EINVAL)."""
        self._expire_if_due()
        self.state.check(deadline_ms)

    def hold(self, conn: Connection, deadline_ms: int, records: Iterable[Record]) -> None:
        """Freeze for ``conn`` with ``records`` as its image, encoded now; the daemon stays
        frozen until ``thaw`` (a migration: the source must not change until it releases)."""
        self._expire_if_due()
        self.state.freeze(self.engine, conn, trio.current_time(), deadline_ms, records=records)
        self._timed_out = None
        self.state.capture()
        self._thawed = trio.Event()

    def capture(self, conn: Connection, deadline_ms: int, records: Iterable[Record]) -> None:
        """``records`` encoded now for ``conn`` to read; the daemon runs on at once (a capture
        freeze: the copy is dropped at the thaw, the deadline or when ``conn`` goes)."""
        self._expire_if_due()
        now = trio.current_time()
        self.state.freeze(self.engine, conn, now, deadline_ms, records=records)
        self._timed_out = None
        self.state.capture()
        self.state.captured(trio.current_time())

    def thaw(self, why: str) -> float:
        return self._thaw(why)

    def _expire_if_due(self) -> None:
        if self.state.expired(trio.current_time()):
            self._timed_out = self.state.owner
            self._thaw("deadline")

    def _thaw(self, why: str) -> float:
        duration = self.state.thaw(trio.current_time())
        self.engine.log.append(f"introspect: thawed after {duration:.6f} s ({why})")
        self._thawed.set()
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            action()
        return duration
