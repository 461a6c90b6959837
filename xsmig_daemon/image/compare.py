"""Semantic comparison of two images (``xsmig diff``).

``ImageState`` folds a record stream into what the stream *means*, dropping what only the
encoding carries: record order where it means nothing, conn-ids (renumbered by every dump),
the stream version and byte order (pending wire data is normalised to little endian).
Connections are matched by identity: a ring by its domid, a socket by its fd.

fd numbers are process artefacts: GLOBAL_DATA's two and the socket connections' differ
between daemons holding the same state (Xen 4.20 numbers everything one lower than 4.17).
By default they are not differences: GLOBAL_DATA's fds are left out, and when both images
have the same number of socket connections whose fds differ by one constant, those are
matched in stream order (named by A's fd). ``fd_differences()`` lists what was left out;
``compare(..., fds=True)`` reports it as differences (area ``fd``).

What is kept per committed node: the value (verbatim up to ``VALUE_KEEP`` bytes, else its
length and a BLAKE2b digest, to bound memory), the permissions with their stale flags, and the
record position, which only serves to compare the order of siblings (the loader rebuilds
child lists in stream order, so that order is visible to DIRECTORY). ``compare()`` returns
the differences, sorted, one ``Difference`` per fact.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..wire.header import swap_wire_messages
from .records import (
    DOMID_INVALID,
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Quota,
    Record,
    RingSpec,
    TransactionData,
    UnknownRecord,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
)
from .summary import format_perms
from .validate import parent_path

VALUE_KEEP = 64
PREVIEW = 32

#: A value as kept: the bytes themselves, or (length, digest) for long values.
ValueKey = bytes | tuple[int, bytes]
Perms = tuple[Permission, ...]
#: (path, token, depth or None for a plain WATCH_DATA)
WatchKey = tuple[str, str, int | None]


def value_key(value: bytes) -> ValueKey:
    if len(value) <= VALUE_KEEP:
        return value
    return (len(value), hashlib.blake2b(value, digest_size=16).digest())


def show_value(key: ValueKey | None) -> str:
    if key is None:
        return "-"
    if isinstance(key, tuple):
        return f"<{key[0]} bytes, blake2b {key[1].hex()[:16]}>"
    shown = repr(key[:PREVIEW])[1:]
    return shown + ("..." if len(key) > PREVIEW else "") + f" ({len(key)} bytes)"


@dataclass(frozen=True, slots=True, order=True)
class Difference:
    area: str  # "global", "quota", "connection", "domain", "node", "record"
    subject: str  # what in that area: a path, "ring dom1", "domain 3", ...
    detail: str

    def __str__(self) -> str:
        return f"{self.area} {self.subject}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"area": self.area, "subject": self.subject, "detail": self.detail}


@dataclass(slots=True)
class NodeState:
    value: ValueKey
    perms: Perms
    position: int


@dataclass(slots=True)
class TxNodeState:
    access: int
    value: ValueKey
    perms: Perms


@dataclass(slots=True)
class ConnectionState:
    identity: str
    tdomid: int | None
    evtchn: int | None
    unique_id: int | None
    pending_in: bytes
    pending_out: bytes
    out_resp_len: int
    watches: set[WatchKey] = field(default_factory=set)
    transactions: dict[int, dict[str, TxNodeState]] = field(default_factory=dict)


def normalise_pending(data: bytes, big_endian: bool) -> bytes:
    """Wire messages in little-endian order; an unconvertible tail is kept verbatim."""
    if not big_endian or not data:
        return data
    swapped = swap_wire_messages(data, True)
    return swapped.data + (data[len(data) - swapped.dropped :] if swapped.dropped else b"")


class ImageState:
    """The meaning of one image, built record by record with ``add()``."""

    def __init__(self, header: Header, against: ImageState | None = None) -> None:
        """With ``against``, committed nodes are not stored but compared on the fly with
        ``against``'s (whose node table is consumed): memory for one tree, not two."""
        self.header = header
        self.node_comparer = None if against is None else NodeComparer(against.nodes)
        self.global_data: GlobalData | None = None
        self.domain_quotas: dict[str, int] | None = None
        self.global_quotas: dict[str, int] | None = None
        self.connections: dict[str, ConnectionState] = {}
        self.domains: dict[int, tuple[int, dict[str, int]]] = {}
        self.nodes: dict[str, NodeState] = {}
        self.unknown: Counter[tuple[int, bytes]] = Counter()
        self._by_conn_id: dict[int, ConnectionState] = {}
        #: Socket connections in stream order, with their fds.
        self.sockets: list[tuple[int, ConnectionState]] = []
        self._perms: dict[Perms, Perms] = {}
        self._position = 0

    @classmethod
    def from_records(cls, header: Header, records: Iterable[Record]) -> ImageState:
        state = cls(header)
        for record in records:
            state.add(record)
        return state

    def add(self, record: Record) -> None:
        match record:
            case NodeData():
                self._node(record)
            case ConnectionData():
                self._connection(record)
            case WatchData() | UnwrittenDepthWatch():
                self._conn(record.conn_id).watches.add((record.path, record.token, None))
            case WatchDataExtended():
                key = (record.path, record.token, record.depth)
                self._conn(record.conn_id).watches.add(key)
            case TransactionData():
                self._conn(record.conn_id).transactions.setdefault(record.tx_id, {})
            case GlobalData():
                self.global_data = record
            case GlobalQuotaData():
                self.domain_quotas = dict(record.domain_quotas)
                self.global_quotas = dict(record.global_quotas)
            case DomainData():
                self.domains[record.domid] = (record.features, dict(record.quotas))
            case UnknownRecord():
                self.unknown[(record.type, record.body)] += 1
            case End():
                pass

    def _intern(self, perms: Perms) -> Perms:
        return self._perms.setdefault(perms, perms)

    def _node(self, record: NodeData) -> None:
        perms = self._intern(record.perms)
        if record.conn_id:
            tx = self._conn(record.conn_id).transactions.setdefault(record.tx_id, {})
            tx[record.path] = TxNodeState(int(record.access), value_key(record.value), perms)
            return
        node = NodeState(value_key(record.value), perms, self._position)
        self._position += 1
        if self.node_comparer is not None:
            self.node_comparer.add(record.path, node)
        else:
            self.nodes[record.path] = node

    def _conn(self, conn_id: int) -> ConnectionState:
        conn = self._by_conn_id.get(conn_id)
        if conn is None:  # only for unvalidated input: keep it, under a name that says so
            conn = self._new_connection(f"unknown conn-id {conn_id}", None, None, None)
            self._by_conn_id[conn_id] = conn
        return conn

    def _new_connection(
        self, identity: str, tdomid: int | None, evtchn: int | None, unique_id: int | None
    ) -> ConnectionState:
        name = identity
        copy = 1
        while name in self.connections:
            copy += 1
            name = f"{identity} #{copy}"
        conn = ConnectionState(name, tdomid, evtchn, unique_id, b"", b"", 0)
        self.connections[name] = conn
        return conn

    def _connection(self, record: ConnectionData) -> None:
        spec = record.spec
        if isinstance(spec, RingSpec):
            tdomid = None if spec.tdomid == DOMID_INVALID else spec.tdomid
            conn = self._new_connection(f"ring dom{spec.domid}", tdomid, spec.evtchn, None)
        else:
            conn = self._new_connection(f"socket fd {spec.fd}", None, None, None)
            self.sockets.append((spec.fd, conn))
        conn.unique_id = record.unique_id
        big = self.header.big_endian
        conn.pending_in = normalise_pending(record.in_data, big)
        resp = record.out_resp_len
        conn.pending_out = record.out_data[:resp] + normalise_pending(record.out_data[resp:], big)
        conn.out_resp_len = resp
        self._by_conn_id[record.conn_id] = conn


# -- comparison ------------------------------------------------------------------------------


def compare(a: ImageState, b: ImageState, *, fds: bool = False) -> list[Difference]:
    """Every semantic difference between ``a`` and ``b``, sorted by area and subject; with
    ``fds``, fd numbers too (see the module doc).

    If ``b`` was built ``against=a``, a's node table has been consumed and this can only be
    called once."""
    found: list[Difference] = []
    found += _global(a, b)
    found += _quotas(a, b)
    found += _connections(a, _renamed_sockets(a, b))
    if fds:
        found += fd_differences(a, b)
    found += _domains(a, b)
    found += _nodes(a, b)  # last: it may consume a's node table
    found += _unknown(a, b)
    order = {
        "global": 0,
        "fd": 1,
        "quota": 2,
        "connection": 3,
        "domain": 4,
        "node": 5,
        "record": 6,
    }
    found.sort(key=lambda d: (order.get(d.area, 9), d.subject, d.detail))
    return found


def _ab(what: str, a: object, b: object) -> str:
    return f"{what}: A {a}, B {b}"


def _global(a: ImageState, b: ImageState) -> Iterator[Difference]:
    """Only whether there is one: its content is fd numbers (``fd_differences``)."""

    def show(g: GlobalData | None) -> str:
        return "none" if g is None else f"rw-socket-fd {g.rw_socket_fd} evtchn-fd {g.evtchn_fd}"

    if (a.global_data is None) != (b.global_data is None):
        yield Difference(
            "global", "GLOBAL_DATA", _ab("GLOBAL_DATA", show(a.global_data), show(b.global_data))
        )


def _fd_shift(a: ImageState, b: ImageState) -> int | None:
    """The constant by which B's socket fds differ from A's (in stream order), if any."""
    if len(a.sockets) != len(b.sockets) or not a.sockets:
        return None
    shifts = {fb - fa for (fa, _), (fb, _) in zip(a.sockets, b.sockets, strict=True)}
    return shifts.pop() if len(shifts) == 1 and 0 not in shifts else None


def _renamed_sockets(a: ImageState, b: ImageState) -> ImageState:
    """``b`` with its socket connections under A's names when they are only renumbered."""
    if _fd_shift(a, b) is None:
        return b
    renamed = {id(cb): ca.identity for (_, ca), (_, cb) in zip(a.sockets, b.sockets, strict=True)}
    view = ImageState(b.header)
    view.connections = {renamed.get(id(c), name): c for name, c in b.connections.items()}
    return view


def fd_differences(a: ImageState, b: ImageState) -> list[Difference]:
    """The fd numbers that differ (process artefacts): GLOBAL_DATA's and, for socket
    connections matched in stream order, each one's."""
    found: list[Difference] = []
    ga, gb = a.global_data, b.global_data
    if ga is not None and gb is not None:
        for what, fa, fb in (
            ("rw-socket-fd", ga.rw_socket_fd, gb.rw_socket_fd),
            ("evtchn-fd", ga.evtchn_fd, gb.evtchn_fd),
        ):
            if fa != fb:
                found.append(Difference("fd", "GLOBAL_DATA", _ab(what, fa, fb)))
    if _fd_shift(a, b) is not None:
        for (fa, ca), (fb, _) in zip(a.sockets, b.sockets, strict=True):
            found.append(Difference("fd", ca.identity, _ab("fd", fa, fb)))
    return found


def _quota_dicts(
    scope: str, qa: dict[str, int] | None, qb: dict[str, int] | None, area: str, subject: str
) -> Iterator[Difference]:
    qa, qb = qa or {}, qb or {}
    for name in sorted(qa.keys() | qb.keys()):
        va, vb = qa.get(name), qb.get(name)
        if va != vb:
            yield Difference(area, subject, _ab(f"{scope}quota {name}", _dash(va), _dash(vb)))


def _quotas(a: ImageState, b: ImageState) -> Iterator[Difference]:
    if (a.domain_quotas is None) != (b.domain_quotas is None):
        where = "A" if a.domain_quotas is not None else "B"
        yield Difference("quota", "GLOBAL_QUOTA_DATA", f"only in {where}")
    yield from _quota_dicts("per-domain ", a.domain_quotas, b.domain_quotas, "quota", "default")
    yield from _quota_dicts("global ", a.global_quotas, b.global_quotas, "quota", "global")


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _connections(a: ImageState, b: ImageState) -> Iterator[Difference]:
    for name in sorted(a.connections.keys() | b.connections.keys()):
        ca, cb = a.connections.get(name), b.connections.get(name)
        if ca is None or cb is None:
            yield Difference("connection", name, f"only in {'A' if cb is None else 'B'}")
            continue
        for what, va, vb in (
            ("tdomid", ca.tdomid, cb.tdomid),
            ("evtchn", ca.evtchn, cb.evtchn),
            ("unique-id", ca.unique_id, cb.unique_id),
            ("out-resp-len", ca.out_resp_len, cb.out_resp_len),
        ):
            if va != vb:
                yield Difference("connection", name, _ab(what, _dash(va), _dash(vb)))
        for what, da, db in (
            ("pending input", ca.pending_in, cb.pending_in),
            ("pending output", ca.pending_out, cb.pending_out),
        ):
            if da != db:
                yield Difference("connection", name, _bytes_differ(what, da, db))
        for watch in sorted(ca.watches ^ cb.watches, key=_watch_sort):
            side = "A" if watch in ca.watches else "B"
            yield Difference("connection", name, f"{_show_watch(watch)}: only in {side}")
        yield from _transactions(name, ca, cb)


def _watch_sort(watch: WatchKey) -> tuple[str, str, int]:
    return (watch[0], watch[1], -1 if watch[2] is None else watch[2])


def _show_watch(watch: WatchKey) -> str:
    depth = "" if watch[2] is None else f" depth {watch[2]}"
    return f"watch {watch[0]!r} token {watch[1]!r}{depth}"


def _bytes_differ(what: str, da: bytes, db: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(da, db, strict=False)) if x != y), None)
    if at is None:
        at = min(len(da), len(db))
    return f"{what}: A {len(da)} bytes, B {len(db)} bytes, first difference at byte {at}"


def _transactions(name: str, ca: ConnectionState, cb: ConnectionState) -> Iterator[Difference]:
    for tx_id in sorted(ca.transactions.keys() | cb.transactions.keys()):
        ta, tb = ca.transactions.get(tx_id), cb.transactions.get(tx_id)
        if ta is None or tb is None:
            yield Difference(
                "connection", name, f"transaction {tx_id}: only in {'A' if tb is None else 'B'}"
            )
            continue
        for path in sorted(ta.keys() | tb.keys()):
            na, nb = ta.get(path), tb.get(path)
            subject = f"transaction {tx_id} node {path}"
            if na is None or nb is None:
                yield Difference(
                    "connection", name, f"{subject}: only in {'A' if nb is None else 'B'}"
                )
                continue
            if na.access != nb.access:
                yield Difference(
                    "connection",
                    name,
                    f"{subject}: " + _ab("access", _access(na.access), _access(nb.access)),
                )
            if na.value != nb.value:
                yield Difference(
                    "connection",
                    name,
                    f"{subject}: " + _ab("value", show_value(na.value), show_value(nb.value)),
                )
            if na.perms != nb.perms:
                yield Difference(
                    "connection",
                    name,
                    f"{subject}: "
                    + _ab("perms", format_perms(na.perms) or "-", format_perms(nb.perms) or "-"),
                )


def _access(bits: int) -> str:
    if bits == NodeAccess.DELETED:
        return "deleted"
    return "+".join(n for flag, n in ((1, "read"), (2, "written")) if bits & flag)


def _domains(a: ImageState, b: ImageState) -> Iterator[Difference]:
    for domid in sorted(a.domains.keys() | b.domains.keys()):
        da, db = a.domains.get(domid), b.domains.get(domid)
        subject = f"dom{domid}"
        if da is None or db is None:
            yield Difference("domain", subject, f"DOMAIN_DATA only in {'A' if db is None else 'B'}")
            continue
        if da[0] != db[0]:
            yield Difference("domain", subject, _ab("features", hex(da[0]), hex(db[0])))
        yield from _quota_dicts("", da[1], db[1], "domain", subject)


class NodeComparer:
    """Compares B's committed nodes, arriving in stream order, with A's node table.

    Matched entries are removed from the table, so what is left at ``finish()`` is only in A.
    Sibling order: B's common children of a parent must appear in increasing A position.
    """

    def __init__(self, a_nodes: dict[str, NodeState]) -> None:
        self._a = a_nodes
        self.found: list[Difference] = []
        self._last_position: dict[str, int] = {}
        self._order_reported: set[str] = set()

    def add(self, path: str, node: NodeState) -> None:
        na = self._a.pop(path, None)
        if na is None:
            self.found.append(Difference("node", path, "only in B"))
            return
        if na.value != node.value:
            self.found.append(
                Difference("node", path, _ab("value", show_value(na.value), show_value(node.value)))
            )
        if na.perms != node.perms:
            self.found.append(
                Difference(
                    "node", path, _ab("perms", format_perms(na.perms), format_perms(node.perms))
                )
            )
        if path.startswith("/") and path != "/":
            parent = parent_path(path)
            last = self._last_position.get(parent, -1)
            if na.position < last and parent not in self._order_reported:
                self._order_reported.add(parent)
                self.found.append(
                    Difference("node", parent, f"order of children differs (at {path})")
                )
            self._last_position[parent] = max(last, na.position)

    def finish(self) -> list[Difference]:
        self.found.extend(Difference("node", path, "only in A") for path in self._a)
        self._a.clear()
        return self.found


def _nodes(a: ImageState, b: ImageState) -> list[Difference]:
    if b.node_comparer is not None:
        return b.node_comparer.finish()
    comparer = NodeComparer(dict(a.nodes))
    for path, node in b.nodes.items():
        comparer.add(path, node)
    return comparer.finish()


def _unknown(a: ImageState, b: ImageState) -> Iterator[Difference]:
    for (record_type, body), count in sorted((a.unknown - b.unknown).items()):
        yield Difference(
            "record", f"type {record_type}", f"{count} x {len(body)}-byte record only in A"
        )
    for (record_type, body), count in sorted((b.unknown - a.unknown).items()):
        yield Difference(
            "record", f"type {record_type}", f"{count} x {len(body)}-byte record only in B"
        )


__all__ = ["Difference", "ImageState", "Quota", "compare"]
