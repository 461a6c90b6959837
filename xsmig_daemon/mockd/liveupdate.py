"""Live update of the mock: hand the running daemon to a successor in the same process.

Predecessor (``LiveUpdater``): answers ``CONTROL live-update`` through the pure session of
``store/liveupdate.py`` and re-evaluates a parked ``-s`` whenever output moves (a
transaction ending replies) and at least once a second, as C does. On "go" it works without
yielding to trio, so no other task runs: that is the freeze. It encodes the complete state,
with the requester's ``OK`` appended to its pending output, to ``$RUNDIR/state_dump``
(temporary file, fsync, rename), marks the listening socket, every client socket and every
domain endpoint inheritable and ``execv``\\ s the successor. Any failure before the exec
undoes the fd flags, removes the dump and answers the requester with the error text; the
daemon then simply goes on serving.

Successor (``load_successor``): reads and validates the dump, restores the engine, wraps the
inherited fds (their numbers come from GLOBAL_DATA, the socket CONNECTION_DATA records and,
for the mock's domain endpoints, the ``XSMIG_LIVE_UPDATE`` environment variable) and
removes the dump only once everything is adopted. A dump written by C xenstored works the
same way: its rings get fresh stand-in endpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import trio

from ..image.decoder import Located
from ..image.encoder import encode_image
from ..image.errors import ImageError
from ..image.pipeline import RecordRewriter
from ..image.profiles import XEN_4_17, Profile
from ..image.records import (
    DOMID_INVALID,
    STREAM_V2,
    ConnectionData,
    ConnType,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeData,
    Record,
    RecordType,
    RingSpec,
    WatchData,
    WatchDataExtended,
)
from ..image.validate import StreamValidator
from ..imagefile import ImageFileError, atomic_output
from ..store import quotas as q
from ..store.connection import Connection
from ..store.image_state import state_records
from ..store.liveupdate import (
    CANCELLED,
    EXEC_FAILED,
    NOT_ACCESSIBLE,
    NOT_EXECUTABLE,
    BinaryStatus,
    LiveUpdateSession,
    PendingStart,
    Session,
    SuccessorKind,
    Verdict,
    decide,
    exec_argv,
    ok_reply,
)
from ..wire import handover as ho
from ..wire.framing import Message
from .restore import RestoreError, load_file
from .server import MockDaemon
from .standby import STANDBY_ENV, HandoverFailedError, StandbyHandover

DUMP_NAME = "state_dump"
#: Mock-to-mock facts that the stream has no place for (JSON; see docs/liveupdate.md).
HANDOVER_ENV = "XSMIG_LIVE_UPDATE"
#: C re-evaluates a parked ``-s`` at least this often (seconds).
RECHECK_INTERVAL = 1.0
#: Bound of a standby handover when ``-s`` has no ``-t`` (xenstore-control's default).
STANDBY_TIMEOUT = 60
MOCK_HEADER = Header(2, False)
#: Loss kinds of the conversion for C that are said otherwise: open transactions make the
#: update wait (as C does), quotas are listed from the engine (``_quota_losses``).
_LOSSES_SAID_OTHERWISE = frozenset(
    {"transaction", "transaction-node", "global-quota", "domain-data"}
)
#: The local event-channel port written for a dom0 ring the mock never had.
DOM0_EVTCHN = 1


def dump_path(rundir: str) -> str:
    return os.path.join(rundir, DUMP_NAME)


def probe_binary(path: str) -> BinaryStatus:
    """C's check: the file must exist and have an x bit (user, group or other)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return BinaryStatus.MISSING
    if not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        return BinaryStatus.NOT_EXECUTABLE
    return BinaryStatus.OK


# -- building the image -----------------------------------------------------------------


@dataclass
class Handover:
    """Everything the exec needs: the records, the fds to keep, the side facts."""

    header: Header
    records: list[Record]
    keep_fds: list[int]
    extra: dict[str, object] = field(default_factory=dict)
    losses: list[str] = field(default_factory=list)
    opened_fds: list[int] = field(default_factory=list)
    #: WATCH_DATA_EXTENDED layout of the successor's loader (``image/watchext.py``)
    watch_ext_layout: str = "doc"
    #: The loader the image is for (checked before the exec).
    profile: Profile = XEN_4_17


def _with_ok(records: Iterable[Record], owner_id: int, ok: bytes) -> Iterator[Record]:
    for record in records:
        if isinstance(record, ConnectionData) and record.conn_id == owner_id:
            yield replace(record, out_data=record.out_data + ok)
        else:
            yield record


def _conn_id(daemon: MockDaemon, conn: Connection) -> int:
    return daemon.engine.connections.index(conn) + 1


def side_facts(daemon: MockDaemon) -> dict[str, object]:
    """What a mock successor must know about open transactions that the stream cannot say."""
    engine = daemon.engine
    # Generation counts are not in the stream: a transaction already doomed to EAGAIN (or to
    # ENOMEM after an earlier error) says so here, so that it ends exactly as it would have.
    doomed = [
        [_conn_id(daemon, conn), tx.tx_id, "ENOMEM" if tx.failed else "EAGAIN"]
        for conn in engine.connections
        for tx in conn.transactions.values()
        if tx.failed or tx.conflicts(engine.tree)
    ]
    # Nor which watch events a commit fires: each transaction lists its pending ones.
    fires = [
        [
            _conn_id(daemon, conn),
            tx.tx_id,
            [[p, e.fire_exact] for p, e in tx.touched.items() if e.fire],
        ]
        for conn in engine.connections
        for tx in conn.transactions.values()
    ]
    return {"doomed": doomed, "fires": fires}


def build_c_handover(
    daemon: MockDaemon,
    pending: PendingStart | None,
    owner: Connection | None,
    profile: Profile = XEN_4_17,
    header: Header | None = None,
) -> Handover:
    """The image for a C loader (``profile``): its newest version unless ``header`` says
    otherwise, the record types it reads, in its order (``_c_order``), with depth watches in
    the layout its loader parses (``Profile.watch_ext_layout``)."""
    engine = daemon.engine
    records: Iterable[Record] = state_records(engine)
    if pending is not None and owner is not None:
        records = _with_ok(records, _conn_id(daemon, owner), ok_reply(pending.request))
    header = header or profile.newest_header
    rewriter = RecordRewriter(MOCK_HEADER, header, profile)
    converted = [c for r in records if (c := rewriter.rewrite(r)) is not None]
    losses = rewriter.report.losses.lines(skip=_LOSSES_SAID_OTHERWISE)
    converted, owner_losses = _owners_with_rings(converted)
    losses.extend(owner_losses)
    if RecordType.GLOBAL_QUOTA_DATA not in profile.record_types:
        losses.extend(_quota_losses(daemon))
    sockets = daemon.client_sockets()
    keep = [daemon.listener.fileno()] if daemon.listener is not None else []
    for conn, sock in sockets.items():
        if conn.kind is ConnType.SOCKET:
            keep.append(sock.fileno())
    evtchn = os.eventfd(0)
    ordered: list[Record] = [GlobalData(keep[0] if keep else -1, evtchn)]
    ordered.extend(_c_order(converted, profile, header, losses))
    return Handover(
        header,
        ordered,
        [*keep, evtchn],
        losses=losses,
        opened_fds=[evtchn],
        watch_ext_layout=profile.watch_ext_layout,
        profile=profile,
    )


def _c_order(
    converted: list[Record], profile: Profile, header: Header, losses: list[str]
) -> list[Record]:
    """Everything after GLOBAL_DATA in a C loader's order: GLOBAL_QUOTA_DATA, dom0's ring
    (synthesised if the mock has none: C needs it before any watch or node), the other
    connections each with its watches, the tree with the special nodes where the daemon's own
    dumps have them (``specials_first``), then DOMAIN_DATA (known domains only, after them)."""
    groups: dict[int, list[Record]] = {}
    nodes: list[NodeData] = []
    specials: list[NodeData] = []
    head: list[Record] = []
    tail: list[Record] = []
    dom0_id = 0
    for record in converted:
        if isinstance(record, ConnectionData):
            groups[record.conn_id] = [record]
            if isinstance(record.spec, RingSpec):
                if record.spec.domid == 0:
                    dom0_id = record.conn_id
                else:
                    losses.append(
                        f"domain {record.spec.domid}: its stand-in endpoint (no ring page; "
                        "the real daemon keeps the domain but its client is disconnected)"
                    )
        elif isinstance(record, WatchData | WatchDataExtended):
            groups[record.conn_id].append(record)
        elif isinstance(record, NodeData):
            (specials if record.path.startswith("@") else nodes).append(record)
        elif isinstance(record, GlobalQuotaData):
            head.append(record)
        elif isinstance(record, DomainData):
            tail.append(record)
    if not dom0_id:
        dom0_id = max(groups, default=0) + 1
        # A version-2 loader reads the ring's unique-id (0: unknown); 4.17 predates it.
        keeps_uid = header.version >= STREAM_V2 and max(profile.versions) >= STREAM_V2
        spec = RingSpec(0, DOMID_INVALID, DOM0_EVTCHN)
        dom0 = ConnectionData(dom0_id, spec, unique_id=0 if keeps_uid else None)
        groups = {dom0_id: [dom0], **groups}
    ordered = [*head, *groups.pop(dom0_id)]
    for group in groups.values():
        ordered.extend(group)
    tree = [*specials, *nodes] if profile.specials_first else [*nodes, *specials]
    return [*ordered, *tree, *tail]


def _owners_with_rings(records: list[Record]) -> tuple[list[Record], list[str]]:
    """4.17 and 4.20 exit restoring a node whose owner they have not re-introduced (no
    ring): such a node's owner becomes dom0 (a loss, so only with -F)."""
    rings = {0} | {
        r.spec.domid
        for r in records
        if isinstance(r, ConnectionData) and isinstance(r.spec, RingSpec)
    }
    losses: list[str] = []
    out: list[Record] = []
    for record in records:
        if isinstance(record, NodeData) and record.perms and record.perms[0].domid not in rings:
            first = record.perms[0]
            losses.append(
                f"node {record.path}: owner domain {first.domid} is not introduced (the real "
                "daemon cannot restore such a node); dom0 would own it"
            )
            out.append(replace(record, perms=(replace(first, domid=0), *record.perms[1:])))
        else:
            out.append(record)
    return out, losses


def _quota_losses(daemon: MockDaemon) -> list[str]:
    engine, defaults = daemon.engine, q.default_quotas()
    lost = [f"global quota {n}={v}" for n, v in engine.global_quotas.items() if defaults[n] != v]
    for domid, domain in sorted(engine.domains.items()):
        changed = [f"{n}={v}" for n, v in domain.quotas.items() if engine.global_quotas[n] != v]
        if changed:
            lost.append(f"domain {domid} quotas {' '.join(changed)}")
    return lost


# -- the predecessor --------------------------------------------------------------------


class LiveUpdater:
    """Serves ``CONTROL live-update`` for ``daemon`` and performs the handover."""

    def __init__(
        self,
        daemon: MockDaemon,
        argv: Sequence[str],
        default_kind: SuccessorKind = SuccessorKind.MOCK,
    ) -> None:
        self.daemon = daemon
        self.argv = list(argv)
        self.default_kind = default_kind
        #: The pure state machine of ``CONTROL live-update`` (store/liveupdate.py).
        self.lu = LiveUpdateSession(probe_binary)
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        #: The running standby handover (mock successors), cancelled by ``-a``.
        self._standby: trio.CancelScope | None = None
        self._next_output = daemon.engine.on_output
        daemon.engine.on_output = self._on_output
        daemon.engine.live_update = self._control

    def _on_output(self, conn: Connection) -> None:
        self._next_output(conn)
        if self.lu.session is not None and self.lu.session.pending is not None:
            self._wake.set()

    def _control(self, conn: Connection, message: Message, args: list[str]) -> str | None:
        text = self.lu.control(conn, message, args, trio.current_time())
        cancelled, self.lu.cancelled = self.lu.cancelled, None
        if cancelled is not None and cancelled.request is not message:
            self._answer(conn, cancelled, CANCELLED)
            if self._standby is not None:
                self._standby.cancel()
        self._wake.set()
        return text

    async def _hand_over_to_standby(
        self, session: Session, pending: PendingStart, owner: Connection
    ) -> None:
        """Start the successor beside us and hand over; on failure answer why and serve on."""
        assert self._standby is not None
        budget = pending.timeout or STANDBY_TIMEOUT
        argv = exec_argv(session.binary, session.cmdline, self.argv)
        env = dict(os.environ)
        env.pop(HANDOVER_ENV, None)
        env.pop(STANDBY_ENV, None)
        daemon = self.daemon
        handover = StandbyHandover(daemon, ok_reply(pending.request), owner)
        reason = ""
        with self._standby:
            try:
                with trio.fail_after(budget):
                    await handover.run(argv, env, lambda: side_facts(daemon))
                handover.let_go()
            except trio.TooSlowError:
                reason = f"the successor did not take over within {budget} s"
            except HandoverFailedError as exc:
                reason = str(exc)
            except ho.HandoverError as exc:
                reason = f"the successor is not an xsmig successor: {exc}"
            except OSError as exc:
                reason = f"the handover channel failed: {exc.strerror or exc}"
                reason += await handover.status()
        # Not handed over (failed, or cancelled by -a): everything back as it was.
        await handover.undo()
        self._standby = None
        if self.lu.session is session:
            self.lu.finish()
            if reason:
                daemon.engine.log.append(f"live-update: {reason}")
                self._answer(owner, pending, f"{EXEC_FAILED[:-1]}: {reason}")

    def _answer(self, conn: Connection, pending: PendingStart, text: str) -> None:
        self.daemon.engine.reply(conn, pending.request, text.encode() + b"\0")

    def kind_for(self, pending: PendingStart) -> SuccessorKind:
        # ``-v 1`` means a successor that loads version 1 only (4.17), unless the successor
        # is 4.22, which loads both.
        # A configured 4.20 successor loads version 1 too.
        if pending.version == 1 and self.default_kind is SuccessorKind.MOCK:
            return SuccessorKind.XEN_417
        return self.default_kind

    async def run(self) -> None:
        deadline = float("inf")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                with trio.move_on_at(min(deadline, trio.current_time() + RECHECK_INTERVAL)):
                    await self._wake.wait()
                self._wake = trio.Event()
                deadline = self.evaluate()

    def evaluate(self) -> float:
        """Decide on a parked ``-s``; returns when to look again at the latest."""
        session = self.lu.session
        if session is None or session.pending is None:
            return float("inf")
        pending, owner = session.pending, session.owner
        if owner not in self.daemon.engine.connections:
            self.lu.finish()  # the requester went away: nobody to answer
            return float("inf")
        now = trio.current_time()
        kind = self.kind_for(pending)
        if kind is SuccessorKind.MOCK:
            if self._standby is None and self._nursery is not None:
                self._standby = trio.CancelScope()
                self._nursery.start_soon(self._hand_over_to_standby, session, pending, owner)
            return float("inf")
        transactions = self.lu.observe(self.daemon.engine.connections, now)
        handover = None
        losses: list[str] = []
        profile = kind.profile
        if profile is not None:
            header = Header(pending.version, False) if kind is SuccessorKind.XEN_422 else None
            handover = build_c_handover(self.daemon, pending, owner, profile, header)
            losses = handover.losses
        decision = decide(pending, now, kind, transactions, losses)
        if decision.verdict is Verdict.WAIT:
            if handover is not None:
                _close_all(handover.opened_fds)
            return decision.deadline
        if decision.verdict is Verdict.FAIL:
            if handover is not None:
                _close_all(handover.opened_fds)
            self.lu.finish()
            self._answer(owner, pending, decision.text)
            return float("inf")
        assert handover is not None  # a mock successor is a standby (above)
        error = self.hand_over(handover, session.binary, session.cmdline)
        # Only reached when the exec did not happen: the daemon goes on serving.
        self.lu.finish()
        self._answer(owner, pending, error)
        return float("inf")

    def hand_over(self, handover: Handover, binary: str, cmdline: str | None) -> str:
        """Check, write the dump and exec; returns the error text if any of it failed.

        Exec in place has no way back, so everything that can be checked is checked first:
        the binary is still there and executable, the image is one its C loader loads, and
        every fd to pass is open and inheritable.
        """
        path = dump_path(self.daemon.rundir)
        refusal = preflight(handover, binary)
        if refusal is not None:
            _close_all(handover.opened_fds)
            self.daemon.engine.log.append(f"live-update: {refusal}")
            return refusal
        try:
            with atomic_output(path, force=True) as out:
                for chunk in encode_image(
                    handover.records, handover.header, watch_ext_layout=handover.watch_ext_layout
                ):
                    out.write(chunk)
        except (ImageFileError, OSError, ValueError) as exc:
            _close_all(handover.opened_fds)
            self.daemon.engine.log.append(f"live-update: {exc}")
            return f"Dump write error: {exc}"
        argv = exec_argv(binary, cmdline, self.argv)
        env = dict(os.environ)
        # Never pass on an older hop's facts (mock -> xenstored -> mock would read them).
        env.pop(HANDOVER_ENV, None)
        if handover.extra:
            env[HANDOVER_ENV] = json.dumps(handover.extra)
        _prepare_for_exec(handover.keep_fds, inherit=True)
        unusable = [fd for fd in handover.keep_fds if not _inheritable(fd)]
        if unusable:
            _prepare_for_exec(handover.keep_fds, inherit=False)
            _close_all(handover.opened_fds)
            _unlink_quietly(path)
            return f"{EXEC_FAILED[:-1]}: fds {unusable} cannot be passed on"
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve(binary, argv, env)
        except OSError as exc:
            _prepare_for_exec(handover.keep_fds, inherit=False)
            _close_all(handover.opened_fds)
            _unlink_quietly(path)
            self.daemon.engine.log.append(f"live-update: exec {binary}: {exc}")
        return EXEC_FAILED


def preflight(handover: Handover, binary: str) -> str | None:
    """Why exec-ing ``binary`` on ``handover`` would fail (C's texts), or None."""
    status = probe_binary(binary)
    if status is BinaryStatus.MISSING:
        return NOT_ACCESSIBLE
    if status is BinaryStatus.NOT_EXECUTABLE:
        return NOT_EXECUTABLE
    profile = handover.profile
    validator = StreamValidator(handover.header, profile)
    try:
        for index, record in enumerate([*handover.records, End()]):
            validator.check(Located(index, 0, record))
    except ImageError as exc:
        return f"{EXEC_FAILED[:-1]}: the image is not one {profile.name} loads: {exc}"
    return None


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False


def _prepare_for_exec(fds: Iterable[int], *, inherit: bool) -> None:
    """Inheritable and blocking for the successor, or back to how trio needs them.

    C xenstored expects blocking sockets: it reads a message body right after its header,
    and a non-blocking socket whose body has not arrived yet (a client that sends the two
    separately, like pyxs) answers EAGAIN, which C takes for a closed connection.
    """
    for fd in fds:
        os.set_inheritable(fd, inherit)
        os.set_blocking(fd, inherit)


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# -- the successor ----------------------------------------------------------------------


@dataclass
class Successor:
    daemon: MockDaemon
    adopted: list[tuple[socket.socket, Connection]]
    dump: str


def _inherited_socket(fd: int, *, listening: bool) -> socket.socket | None:
    """The socket at ``fd`` if it is one of the expected kind (else: not inherited)."""
    if fd < 0:
        return None
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    if bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)) != listening:
        sock.detach()
        return None
    os.set_inheritable(fd, False)
    return sock


def load_successor(socket_path: str, rundir: str, environ: dict[str, str]) -> Successor:
    """Restore from ``rundir/state_dump`` and wrap the inherited fds (no trio needed)."""
    path = dump_path(rundir)
    engine = load_file(path).engine
    try:
        extra = json.loads(environ.get(HANDOVER_ENV, "{}"))
    except ValueError as exc:
        raise RestoreError(f"${HANDOVER_ENV}: not the predecessor's JSON: {exc}") from None
    by_id = dict(enumerate(engine.connections, start=1))
    for conn_id, tx_id, error in extra.get("doomed", []):
        tx = by_id[conn_id].transactions.get(tx_id) if conn_id in by_id else None
        if tx is not None:
            tx.failed = error == "ENOMEM"
            for entry in tx.touched.values():
                entry.generation = -1
    for conn_id, tx_id, pending in extra.get("fires", []):
        tx = by_id[conn_id].transactions.get(tx_id) if conn_id in by_id else None
        if tx is not None:
            exact = dict(pending)
            for node_path, entry in tx.touched.items():
                entry.fire = node_path in exact
                entry.fire_exact = bool(exact.get(node_path, True))
    daemon = MockDaemon(socket_path, rundir, engine)
    daemon.adopted_listener = _inherited_socket(engine.listen_fd, listening=True)
    adopted: list[tuple[socket.socket, Connection]] = []
    for conn in list(engine.connections):
        if conn.kind is not ConnType.SOCKET:
            continue
        sock = _inherited_socket(conn.fd, listening=False)
        if sock is None:
            # Not inherited (a restart by hand from a kept dump): that client is gone.
            engine.disconnect(conn)
        else:
            adopted.append((sock, conn))
    for domid_text, (listen_fd, client_fd) in dict(extra.get("domains", {})).items():
        domid = int(domid_text)
        listener = _inherited_socket(listen_fd, listening=True)
        if listener is not None:
            daemon.adopted_domain_listeners[domid] = listener
        client = _inherited_socket(client_fd, listening=False)
        ring = engine.domain_connection(domid)
        if client is not None and ring is not None:
            adopted.append((client, ring))
    return Successor(daemon, adopted, path)


__all__ = [
    "DUMP_NAME",
    "HANDOVER_ENV",
    "LiveUpdater",
    "RestoreError",
    "Successor",
    "build_c_handover",
    "dump_path",
    "load_successor",
    "probe_binary",
]
