"""``CONTROL migrate``: move one guest's xenstore state between two running mocks.

Protocol (docs/introspect.md, "Migrating one domain"); every request needs a privileged
caller, like every CONTROL.

At the source:

* ``migrate precopy <domid> <deadline-ms>`` (optional, while the guest still runs): the
  domain's committed nodes (and DOMAIN_DATA) as a stream, copied in one step and read with
  ``introspect read`` while the daemon runs on (a ``capture`` freeze; ``introspect thaw``
  drops the copy). The daemon remembers the tree's generation and the node count.
* ``migrate export <domid> <deadline-ms> [since-precopy]`` freezes the daemon (the
  introspection freeze: only the caller is served) and encodes the domain's migration
  stream (store/migration.py). The guest's endpoint is sealed first (its reading side shut
  down): from this instant a write by the guest fails with EPIPE instead of vanishing, as a
  real migration pauses the guest. What it wrote before and the daemon has not read is
  part of the connection's pending input (peeked, not consumed: bytes in a ring move with
  the guest). The caller reads the stream with ``introspect read``.
  With ``since-precopy``, if none of the domain's nodes changed since the pre-copy, the
  stream leaves the nodes out and the reply is ``OK unchanged``; otherwise it is the whole
  stream and the reply ``OK full``. The reply ends with a fate word for each of the
  guest's open transactions whose commit needs one (store/txfate.py), decided now: the
  daemon is frozen until the release, so they stay true.
* ``migrate release <domid>`` (the freezing caller, after the destination took the stream):
  the domain is released as RELEASE releases it -- its connection and endpoint go, its nodes
  are removed, ``@releaseDomain`` fires -- and the daemon thaws.
* ``migrate abort``, ``introspect thaw``, the caller going away, or the freeze deadline:
  the daemon thaws with the domain untouched. The sealed endpoint's bytes are read and
  answered as usual, then it closes: the guest reattaches there and goes on.

At the destination:

* ``migrate import begin [<domid>]`` opens an import for the caller (one at a time), to
  create the domain at ``domid`` (default: the stream's);
* ``migrate import data <bytes>`` appends stream bytes (binary: the payload after
  ``data\\0`` up to a final NUL); they are decoded and validated as they arrive;
* ``migrate import stage`` ends a pre-copy stream: it is checked and planned now (``OK`` or
  ``refused: <cause>``), nothing changes; the next ``data`` bytes are a new stream;
* ``migrate import commit [staged] [<fate>...]`` checks the stream (with ``staged``: plus
  the staged nodes, checked again) against the daemon and applies it in one synchronous
  step, or changes nothing; the reply is ``OK`` or ``refused: <cause>``. The fate words are
  the source's export reply's, passed on;
* ``migrate import abort``, or the caller going away, drops the import.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..image.errors import ImageError
from ..image.pipeline import ImageParser
from ..image.records import DOMID_FIRST_RESERVED, Record
from ..store.connection import Connection
from ..store.errors import XsError
from ..store.migration import (
    ImportPlan,
    ImportRefusedError,
    NodesMark,
    apply_import,
    domain_records,
    nodes_mark,
    nodes_unchanged,
    plan_import,
    transaction_fates,
)
from ..store.txfate import FateError, parse_fates
from ..store.wireargs import c_atoi

if TYPE_CHECKING:
    from .server import MockDaemon

COMMAND = b"migrate"
#: CONNECTION_DATA's in-data-len is 16 bits.
_PENDING_INPUT_MAX = 0xFFFF
_OK = b"OK\0"


def _parser() -> ImageParser:
    return ImageParser(migration=True)


@dataclass(slots=True)
class _Import:
    domid: int | None
    parser: ImageParser = field(default_factory=_parser)
    records: list[Record] = field(default_factory=list)
    error: str | None = None
    staged: ImportPlan | None = None

    def next_stream(self) -> None:
        self.parser, self.records = _parser(), []

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            self.records.extend(item.record for item in self.parser.stream(data))
        except ImageError as exc:
            self.error = f"bad image: {exc}"

    def finish(self) -> list[Record]:
        if self.error is None:
            try:
                self.parser.close()
            except ImageError as exc:
                self.error = f"bad image: {exc}"
        if self.error is not None:
            raise ImportRefusedError(self.error)
        return self.records


class Migration:
    """Serves ``CONTROL migrate`` for ``daemon`` (both ends)."""

    def __init__(self, daemon: MockDaemon) -> None:
        self.daemon = daemon
        self.engine = daemon.engine
        self.introspection = daemon.introspection
        #: The domain frozen for export, and by whom.
        self._export: tuple[Connection, int] | None = None
        #: Where each caller's latest pre-copy of a domain was taken.
        self._marks: dict[tuple[Connection, int], NodesMark] = {}
        self._imports: dict[Connection, _Import] = {}
        self.engine.control_extensions[COMMAND] = self._control

    def _control(self, conn: Connection, args: list[bytes]) -> bytes:
        match args:
            case [b"precopy", domid, deadline]:
                return self._precopy(conn, _domid(domid), c_atoi(deadline))
            case [b"export", domid, deadline]:
                return self._start_export(conn, _domid(domid), c_atoi(deadline), False)
            case [b"export", domid, deadline, b"since-precopy"]:
                return self._start_export(conn, _domid(domid), c_atoi(deadline), True)
            case [b"release", domid]:
                return self._release(conn, _domid(domid))
            case [b"abort"]:
                return self._abort(conn)
            case [b"import", command, *rest]:
                return self._import(conn, command, rest)
        raise XsError("EINVAL", f"migrate arguments {args[:3]!r}")

    # -- source ---------------------------------------------------------------------------

    def _introduced(self, domid: int) -> None:
        domain = self.engine.domains.get(domid)
        if domain is None or not domain.introduced:
            raise XsError("ENOENT", f"domain {domid} is not introduced")

    def _precopy(self, conn: Connection, domid: int, deadline_ms: int) -> bytes:
        self._introduced(domid)
        records = domain_records(self.engine, domid, connection=False)
        self.introspection.capture(conn, deadline_ms, records)
        self._forget_gone()
        self._marks[conn, domid] = nodes_mark(self.engine, domid)
        return _OK

    def _start_export(self, conn: Connection, domid: int, deadline_ms: int, since: bool) -> bytes:
        self._introduced(domid)
        mark = self._marks.pop((conn, domid), None)
        unchanged = since and mark is not None and nodes_unchanged(self.engine, domid, mark)
        self.introspection.check_freeze(deadline_ms)  # refused before the guest is sealed
        unread = self._seal(domid)
        records = domain_records(self.engine, domid, unread_input=unread, nodes=not unchanged)
        self.introspection.hold(conn, deadline_ms, records)
        self._export = (conn, domid)
        self.engine.log.append(f"migrate: domain {domid} exported, frozen by {conn!r}")
        words = [b"OK"]
        if since:
            words.append(b"unchanged" if unchanged else b"full")
        words += transaction_fates(self.engine, domid)
        return b" ".join(words) + b"\0"

    def _seal(self, domid: int) -> bytes:
        """Shut the guest's endpoint for input and return the bytes the guest sent that the
        daemon has not read (peeked: still in the socket). Once shut, nothing more can
        arrive, so the stream holds all of it; the guest's later writes fail (EPIPE)."""
        guest = self.engine.domain_connection(domid)
        sock = self.daemon.client_sockets().get(guest) if guest is not None else None
        if guest is None or sock is None:
            return b""
        room = max(0, _PENDING_INPUT_MAX - len(guest.decoder.pending))
        try:
            sock.shutdown(socket.SHUT_RD)
            unread = sock.recv(room + 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return b""  # the guest went away: nothing of it is left to carry
        if len(unread) > room:
            raise XsError(
                "E2BIG",
                f"domain {domid} has more unread input than a stream holds ({room} bytes); "
                "its endpoint is closed after answering it",
            )
        return unread

    def _discard_unread(self, domid: int) -> None:
        """The unread input went with the stream (the seal let nothing in after it); consume
        it so that closing the endpoint does not reset the guest's socket (which would lose
        the replies still on it)."""
        guest = self.engine.domain_connection(domid)
        sock = self.daemon.client_sockets().get(guest) if guest is not None else None
        while sock is not None:
            try:
                if not sock.recv(_PENDING_INPUT_MAX, socket.MSG_DONTWAIT):
                    return
            except OSError:
                return

    def _holding(self, conn: Connection) -> int:
        if self._export is None or self._export[0] is not conn:
            raise XsError("EINVAL", f"{conn!r} holds no exported domain")
        if self.introspection.state.owner is not conn:
            self._export = None
            raise XsError("EAGAIN", "the freeze ended (deadline or thaw) before the release")
        return self._export[1]

    def _release(self, conn: Connection, domid: int) -> bytes:
        held = self._holding(conn)
        if held != domid:
            raise XsError("EINVAL", f"domain {domid} is not the exported one ({held})")
        self._discard_unread(domid)
        self.engine.release(domid)
        self._export = None
        self.introspection.thaw(f"domain {domid} migrated away")
        return _OK

    def _abort(self, conn: Connection) -> bytes:
        domid = self._holding(conn)
        self._export = None
        self.introspection.thaw(f"migration of domain {domid} aborted")
        return _OK

    # -- destination ----------------------------------------------------------------------

    def _import(self, conn: Connection, command: bytes, rest: list[bytes]) -> bytes:
        self._forget_gone()
        if command == b"begin" and len(rest) <= 1:
            if any(other is not conn for other in self._imports):
                raise XsError("EBUSY", "another import is in progress")
            self._imports[conn] = _Import(_domid(rest[0]) if rest else None)
            return _OK
        session = self._imports.get(conn)
        if session is None:
            raise XsError("EINVAL", f"{conn!r} has no import in progress")
        if command == b"data":
            # The payload after "data\0" up to the final NUL, NULs included.
            session.feed(b"\0".join(rest))
            return _OK
        if command == b"abort" and not rest:
            del self._imports[conn]
            return _OK
        if command == b"stage" and not rest:
            return self._stage(conn, session)
        if command == b"commit":
            del self._imports[conn]
            staged = rest[:1] == [b"staged"]
            if staged and session.staged is None:
                return b"refused: no staged pre-copy\0"
            return self._commit(session, session.staged if staged else None, rest[staged:])
        raise XsError("EINVAL", f"migrate import {command!r}")

    def _stage(self, conn: Connection, session: _Import) -> bytes:
        try:
            session.staged = plan_import(self.engine, session.finish(), session.domid)
        except ImportRefusedError as exc:
            del self._imports[conn]
            return f"refused: {exc}".encode() + b"\0"
        session.next_stream()
        return _OK

    def _commit(self, session: _Import, staged: ImportPlan | None, words: list[bytes]) -> bytes:
        try:
            fates = parse_fates(words)
            records = session.finish()
            plan = plan_import(self.engine, records, session.domid, staged=staged, fates=fates)
        except (ImportRefusedError, FateError) as exc:
            self.engine.log.append(f"migrate: import refused: {exc}")
            return f"refused: {exc}".encode() + b"\0"
        apply_import(self.engine, plan)
        self.engine.log.append(f"migrate: domain {plan.remap.old} imported as {plan.domid}")
        return _OK

    def _forget_gone(self) -> None:
        """Imports and pre-copy marks of callers that went away."""
        live = set(self.engine.connections)
        for conn in [c for c in self._imports if c not in live]:
            del self._imports[conn]
        for key in [k for k in self._marks if k[0] not in live]:
            del self._marks[key]


def _domid(raw: bytes) -> int:
    text = raw.decode("ascii", "replace")
    if not text.isdigit() or int(text) >= DOMID_FIRST_RESERVED:
        raise XsError("EINVAL", f"domid {text!r}")
    return int(text)
