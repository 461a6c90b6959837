"""Lay a live-update record stream out the way a real C xenstored loads (and writes) it.

``LoaderLayout(profile)`` is a record-to-records transform, applied after ``ImageConverter``
for a ``--target xen-*``. It produces what the profile's loader needs and the stream does not
have, and says so in ``notes``:

* GLOBAL_DATA first, with an fd number for the event channel and the listening socket. A
  source without one (the mock has no event channel; a wire source sees neither) gets the
  target version's own number when it is free, else the lowest free one (never one that a
  socket connection uses). Explicit ``LayoutOptions`` numbers win; two uses of one fd fail.
* dom0's ring CONNECTION_DATA before any other connection and before the tree; a source
  without one (the mock: dom0 talks over sockets) gets one synthesised.
* The special nodes where that version writes them: before the tree (4.17) or after it
  (4.20). A source that has them after the tree can pass them in (``specials``, read ahead
  from a file) to have them first; otherwise they stay where they are (loaders take both).
* An image written by one real version (recognised by its GLOBAL_DATA fds *and* where its
  special nodes are), converted for another, gets the target's fd numbers (GLOBAL_DATA's
  and the socket connections', shifted together): they are process artefacts, so the result
  equals what the target daemon would have dumped. ``keep_fds`` turns this off (a live
  handover whose fds are real).

Only the records before the tree are held back (GLOBAL, connections, their watches and
transactions: bounded by the number of clients) and the two special nodes; the tree streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .errors import ProfileError
from .profiles import Profile, writer_of
from .records import (
    DOMID_INVALID,
    ConnectionData,
    End,
    GlobalData,
    GlobalQuotaData,
    NodeData,
    Record,
    RecordType,
    RingSpec,
    SocketSpec,
)

#: stdin, stdout, stderr: never a loader's fd.
_FIRST_FREE_FD = 3


@dataclass(frozen=True, slots=True)
class LayoutOptions:
    """Explicit GLOBAL_DATA fds (None: keep the source's, or choose one), dom0's ring port
    for a synthesised dom0 connection, and whether a real writer's fds may be renumbered."""

    socket_fd: int | None = None
    evtchn_fd: int | None = None
    dom0_evtchn: int = 1
    #: of a synthesised dom0 ring: 0 ("unknown") for a version-2 stream, None for version 1
    dom0_unique_id: int | None = None
    keep_fds: bool = False


def is_special(record: Record) -> bool:
    return isinstance(record, NodeData) and not record.conn_id and record.path.startswith("@")


#: GLOBAL_DATA, CONNECTION_DATA, WATCH_DATA, TRANSACTION_DATA, GLOBAL_QUOTA_DATA,
#: WATCH_DATA_EXTENDED: what precedes the tree (a connection's records, and the globals).
_PREFIX_TYPES = frozenset(
    {
        RecordType.GLOBAL_DATA,
        RecordType.CONNECTION_DATA,
        RecordType.WATCH_DATA,
        RecordType.TRANSACTION_DATA,
        RecordType.GLOBAL_QUOTA_DATA,
        RecordType.WATCH_DATA_EXTENDED,
    }
)


def _starts_tree(record: Record) -> bool:
    """A committed node (C needs dom0's ring before it), or what comes after the tree
    (DOMAIN_DATA, END, unknown types). A transaction's node belongs to its connection."""
    if isinstance(record, NodeData):
        return not record.conn_id
    return record.type not in _PREFIX_TYPES


class LoaderLayout:
    """See the module doc. ``feed`` each record (END included, or call ``finish``)."""

    def __init__(
        self,
        profile: Profile,
        options: LayoutOptions | None = None,
        *,
        specials: Sequence[NodeData] | None = None,
    ) -> None:
        self.profile = profile
        self.options = options or LayoutOptions()
        self.notes: list[str] = []
        self._prefix: list[Record] = []
        self._specials: list[NodeData] = list(specials or ())
        self._specials_read_ahead = specials is not None
        self._specials_written = False
        #: The source wrote a special node before its tree (as 4.17 does).
        self._source_specials_first = False
        self._in_tree = False
        self._fd_shift = 0

    # -- public ----------------------------------------------------------------------------
    def feed(self, record: Record) -> list[Record]:
        if not self._in_tree:
            if is_special(record):
                self._source_specials_first = True
                self._hold_special(record)
                return []
            if not _starts_tree(record):
                self._prefix.append(record)
                return []
            out = self._flush_prefix()
        else:
            out = []
        if is_special(record):
            assert isinstance(record, NodeData)
            out.extend(self._special_in_tree(record))
        elif isinstance(record, NodeData):
            out.append(record)
        else:
            out.extend(self._pending_specials())
            out.append(self._renumbered(record))
        return out

    def finish(self) -> list[Record]:
        """What is still held, for a caller that writes END itself."""
        out = [] if self._in_tree else self._flush_prefix()
        out.extend(self._pending_specials())
        return out

    # -- specials ----------------------------------------------------------------------------
    def _hold_special(self, record: Record) -> None:
        assert isinstance(record, NodeData)
        if not self._specials_read_ahead:
            self._specials.append(record)

    def _special_in_tree(self, record: NodeData) -> list[Record]:
        if self._specials_read_ahead:
            return []  # written from the read-ahead copy instead
        if self.profile.specials_first or self._specials_written:
            if self.profile.specials_first:
                self._note_specials_after_tree()
            return [record]
        self._specials.append(record)
        return []

    def _note_specials_after_tree(self) -> None:
        note = (
            f"special nodes kept after the tree, where the source has them "
            f"({self.profile.name} writes them first and loads either order)"
        )
        if note not in self.notes:
            self.notes.append(note)

    def _pending_specials(self) -> list[Record]:
        if self._specials_written:
            return []
        self._specials_written = True
        held, self._specials = self._specials, []
        return list(held)

    # -- the records before the tree ------------------------------------------------------
    def _flush_prefix(self) -> list[Record]:
        self._in_tree = True
        prefix, self._prefix = self._prefix, []
        global_data = next((r for r in prefix if isinstance(r, GlobalData)), None)
        connections = [r for r in prefix if isinstance(r, ConnectionData)]
        conn_fds = [c.spec.fd for c in connections if isinstance(c.spec, SocketSpec)]
        if global_data is None:
            self.notes.append(f"GLOBAL_DATA synthesised: the source had none ({self.profile.name})")
            global_data = GlobalData(-1, -1)
        global_data, conn_fds = self._renumber_writer_fds(global_data, conn_fds)
        global_data = self._complete_global(global_data, conn_fds)
        head: list[Record] = [global_data]
        rest: list[Record] = []
        dom0 = next((c for c in connections if _is_dom0_ring(c)), None)
        for record in prefix:
            if isinstance(record, GlobalQuotaData):
                head.append(record)
            elif not isinstance(record, GlobalData) and record is not dom0:
                rest.append(self._renumbered(record))
        head.append(dom0 if dom0 is not None else self._synthesised_dom0(connections))
        head.extend(rest)
        if self.profile.specials_first and self._specials:
            head.extend(self._pending_specials())
        return head

    def _synthesised_dom0(self, connections: Iterable[ConnectionData]) -> ConnectionData:
        conn_id = max((c.conn_id for c in connections), default=0) + 1
        port = self.options.dom0_evtchn
        self.notes.append(
            f"dom0 ring CONNECTION_DATA synthesised as conn {conn_id} (event channel {port}): "
            f"the source has none and {self.profile.name} needs it before any node"
        )
        spec = RingSpec(0, DOMID_INVALID, port)
        return ConnectionData(conn_id, spec, unique_id=self.options.dom0_unique_id)

    def _renumber_writer_fds(
        self, record: GlobalData, conn_fds: list[int]
    ) -> tuple[GlobalData, list[int]]:
        target = self.profile.fds
        writer = writer_of(record.rw_socket_fd, record.evtchn_fd, self._source_specials_first)
        if self.options.keep_fds or target is None or writer is None or writer.fds is None:
            return record, conn_fds
        source = writer.fds
        if source == target or any(fd < source.first_conn_fd for fd in conn_fds):
            return record, conn_fds
        self._fd_shift = target.first_conn_fd - source.first_conn_fd
        self.notes.append(
            f"fd numbers of {writer.name}'s process renumbered as {self.profile.name} has them "
            f"(process artefacts, not state): GLOBAL socket {source.socket_fd} -> "
            f"{target.socket_fd}, evtchn {source.evtchn_fd} -> {target.evtchn_fd}, "
            f"{len(conn_fds)} socket connections {self._fd_shift:+d}"
        )
        renumbered = GlobalData(target.socket_fd, target.evtchn_fd)
        return renumbered, [fd + self._fd_shift for fd in conn_fds]

    def _renumbered(self, record: Record) -> Record:
        if (
            self._fd_shift
            and isinstance(record, ConnectionData)
            and isinstance(record.spec, SocketSpec)
        ):
            return replace(record, spec=SocketSpec(record.spec.fd + self._fd_shift))
        return record

    def _complete_global(self, record: GlobalData, conn_fds: list[int]) -> GlobalData:
        opts, fds = self.options, self.profile.fds
        evtchn = opts.evtchn_fd if opts.evtchn_fd is not None else record.evtchn_fd
        socket_fd = opts.socket_fd if opts.socket_fd is not None else record.rw_socket_fd
        taken = set(conn_fds)
        if socket_fd >= 0:
            taken.add(socket_fd)
        if evtchn < 0:
            evtchn = _free_fd(fds.evtchn_fd if fds else _FIRST_FREE_FD, taken)
            self.notes.append(
                f"GLOBAL_DATA evtchn-fd {evtchn} chosen: the source has no event-channel fd "
                f"and {self.profile.name} needs one open there"
            )
        taken.add(evtchn)
        if socket_fd < 0 and opts.socket_fd is None:
            socket_fd = _free_fd(fds.socket_fd if fds else _FIRST_FREE_FD, taken)
            self.notes.append(
                f"GLOBAL_DATA rw-socket-fd {socket_fd} chosen: the source has no listening "
                f"socket; {self.profile.name} serves clients on the socket open there"
            )
        self._check_distinct(socket_fd, evtchn, conn_fds)
        return GlobalData(socket_fd, evtchn)

    def _check_distinct(self, socket_fd: int, evtchn: int, conn_fds: list[int]) -> None:
        uses: dict[int, str] = {}
        named = [("rw-socket-fd", socket_fd), ("evtchn-fd", evtchn)]
        named += [("a socket connection's fd", fd) for fd in conn_fds]
        for what, fd in named:
            if fd < 0 and what == "rw-socket-fd":
                continue
            if fd in uses:
                raise ProfileError(
                    f"{self.profile.name}: fd {fd} is both {uses[fd]} and {what}: the loader "
                    "needs a distinct open fd for each"
                )
            uses[fd] = what


def _is_dom0_ring(record: ConnectionData) -> bool:
    return isinstance(record.spec, RingSpec) and record.spec.domid == 0


def _free_fd(preferred: int, taken: set[int]) -> int:
    if preferred not in taken:
        return preferred
    fd = _FIRST_FREE_FD
    while fd in taken:
        fd += 1
    return fd


def read_ahead_specials(records: Iterable[Record]) -> list[NodeData]:
    """The committed special nodes of a stream (for a file read twice), in stream order."""
    return [r for r in records if isinstance(r, NodeData) and is_special(r)]


def lay_out(
    records: Iterable[Record],
    profile: Profile,
    options: LayoutOptions | None = None,
    *,
    specials: Sequence[NodeData] | None = None,
) -> tuple[list[Record], list[str]]:
    """A whole (small) stream laid out at once: the records, END included, and the notes."""
    layout = LoaderLayout(profile, options, specials=specials)
    out: list[Record] = []
    ended = False
    for record in records:
        out.extend(layout.feed(record))
        ended = isinstance(record, End)
    if not ended:
        out.extend(layout.finish())
    return out, layout.notes
