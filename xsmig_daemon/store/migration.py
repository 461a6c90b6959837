"""One domain's migration stream against a running engine (image-format.md section 7), no I/O.

Export -- ``domain_records(engine, N)`` is everything the stream holds for domain N, in an
order a migration loader takes: N's ring CONNECTION_DATA (pending input and output,
unique-id) with its watches and open transactions (TRANSACTION_DATA + their nodes), the home
subtree ``/local/domain/N`` in pre-order, the other nodes N owns (pre-order), the special
nodes whose permission list names N, and N's DOMAIN_DATA.

Import -- ``plan_import(engine, records, domid=M)`` checks a whole stream against the
destination and returns an ``ImportPlan``, or raises ``ImportRefusedError`` with a one-line cause;
it changes nothing. ``apply_import(engine, plan)`` then makes the change in one synchronous
step that cannot fail half-way: the domain is created at M, every path under the old home and
every permission entry naming N are remapped to M, the nodes are written (missing ancestors
are created as a privileged write would create them), other connections' watches fire as
those writes would, ``@introduceDomain`` fires, and the connection is restored with its
pending bytes, watches and transactions. The migrated guest gets no event for nodes that
already existed at its source.

Open transactions: the stream has no generation counts, so the source adds what their
commits must know (``transaction_fates``, store/txfate.py) and the destination applies it
(``plan_import(fates=...)``): each ends as it would have at the source.

Release at the source is the engine's own ``release``: the connection goes, nodes N owns are
removed and entries naming it become stale, ``@releaseDomain`` fires (as C does).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from ..image.records import (
    DEPTH_UNLIMITED,
    DOMID_FIRST_RESERVED,
    DOMID_INVALID,
    ConnectionData,
    DomainData,
    End,
    NodeAccess,
    NodeData,
    Permission,
    Record,
    RingSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
    encode_text,
)
from ..wire.features import SUPPORTED_FEATURES
from ..wire.framing import HEADER_SIZE
from ..wire.ops import Op
from ..wire.paths import (
    INTRODUCE_DOMAIN,
    RELEASE_DOMAIN,
    basename,
    canonicalize,
    domain_home,
    parent,
)
from . import quotas as q
from .connection import Connection, Watch
from .domains import Domain
from .engine import Engine
from .image_state import _connection_records, _rebuild_tx_children, _restore_tx_node
from .transaction import Transaction
from .tree import NODE_HEADER_SIZE, Node, Tree
from .txfate import apply_fate, fate_words
from .watches import fire, fire_special

_U32 = struct.Struct("<I")


class ImportRefusedError(Exception):
    """The destination cannot take the stream; the message is one line naming the cause."""


# -- export ---------------------------------------------------------------------------------


def domain_nodes(engine: Engine, domid: int) -> Iterator[tuple[str, Node]]:
    """The committed nodes a stream of ``domid`` holds: the home subtree, then the other
    nodes it owns, each part in pre-order."""
    home = domain_home(domid)
    in_home = 0
    for path, node in engine.tree.walk(home):
        in_home += node.owner == domid
        yield path, node
    if engine.tree.owned[domid] > in_home:
        for path, node in engine.tree.walk():
            if node.owner == domid and not _under(path, home):
                yield path, node


@dataclass(frozen=True, slots=True)
class NodesMark:
    """Where a pre-copy of a domain's nodes was taken: the tree's generation, and how many."""

    generation: int
    count: int


def nodes_mark(engine: Engine, domid: int) -> NodesMark:
    return NodesMark(engine.tree.generation, sum(1 for _ in domain_nodes(engine, domid)))


def nodes_unchanged(engine: Engine, domid: int, mark: NodesMark) -> bool:
    """True if the domain's nodes are exactly those of the pre-copy at ``mark``.

    Every write gives the node written a newer generation, a new node included, and a
    removal either rewrites the parent's child list (a newer generation) or, for a node
    whose parent is outside the set, lowers the count; so no newer node and the same count
    means nothing was added, changed or removed.
    """
    count = 0
    for _path, node in domain_nodes(engine, domid):
        if node.generation > mark.generation:
            return False
        count += 1
    return count == mark.count


def domain_records(
    engine: Engine,
    domid: int,
    *,
    unread_input: bytes = b"",
    connection: bool = True,
    nodes: bool = True,
) -> Iterator[Record]:
    """The migration stream of ``domid`` without END (see the module doc).

    ``unread_input`` is what the guest has sent that the transport has not read yet (it is
    pending input of the connection, like bytes still in a ring). ``connection`` /
    ``nodes`` False leave out the ring (with its watches and transactions) / the committed
    nodes: a pre-copy carries only the nodes, the stream that follows only the rest.
    """
    conn = engine.domain_connection(domid) if connection else None
    if conn is not None:
        for record in _connection_records(1, conn):
            if isinstance(record, ConnectionData) and unread_input:
                yield replace(record, in_data=record.in_data + unread_input)
            elif not _found_missing(record):
                yield record
    if nodes:
        for path, node in domain_nodes(engine, domid):
            yield NodeData(path, node.value, node.perms)
    for special in (RELEASE_DOMAIN, INTRODUCE_DOMAIN):
        perms = engine.tree.special_perms[special]
        if any(p.domid == domid for p in perms):
            yield NodeData(special, b"", perms)
    domain = engine.domains.get(domid)
    if domain is not None:
        yield DomainData(domid, domain.features, tuple(domain.quotas.items()))


def _found_missing(record: Record) -> bool:
    """A node a transaction read and found missing: the format has no such record (a
    transaction node without permissions is a deletion). It is left out: its nearest
    existing ancestor, which the transaction read too, conflicts whenever it would, and a
    conflict already there travels as the transaction's fate."""
    return (
        isinstance(record, NodeData)
        and not record.committed
        and not record.perms
        and record.access == NodeAccess.READ
    )


def transaction_fates(engine: Engine, domid: int) -> list[bytes]:
    """The fate words of the domain's open transactions (store/txfate.py), decided now."""
    conn = engine.domain_connection(domid)
    return fate_words(conn.transactions.values(), engine.tree) if conn is not None else []


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


# -- remapping ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Remap:
    """Domain ``old`` becomes ``new``: its home paths and permission entries follow."""

    old: int
    new: int
    #: Remapped permission lists by original (a store has few distinct ones).
    _perms: dict[tuple[Permission, ...], tuple[Permission, ...]] = field(
        default_factory=dict, compare=False
    )

    @property
    def old_home(self) -> str:
        return domain_home(self.old)

    @property
    def new_home(self) -> str:
        return domain_home(self.new)

    def path(self, path: str) -> str:
        if self.old == self.new or not _under(path, self.old_home):
            return path
        return self.new_home + path[len(self.old_home) :]

    def perms(self, perms: tuple[Permission, ...]) -> tuple[Permission, ...]:
        found = self._perms.get(perms)
        if found is None:
            found = perms
            if self.old != self.new and any(p.domid == self.old for p in perms):
                found = tuple(
                    Permission(p.access, self.new, p.stale) if p.domid == self.old else p
                    for p in perms
                )
            self._perms[perms] = found
        return found

    def node(self, record: NodeData) -> NodeData:
        if self.old == self.new:
            return record
        path, perms = self.path(record.path), self.perms(record.perms)
        if path is record.path and perms is record.perms:
            return record
        return NodeData(path, record.value, perms, record.conn_id, record.tx_id, record.access)

    def event(self, message: bytes) -> bytes:
        """A queued WATCH_EVENT whose absolute path is under the old home, re-pointed."""
        body = message[HEADER_SIZE:]
        path, sep, rest = body.partition(b"\0")
        text = path.decode("utf-8", "surrogateescape")
        moved = self.path(text)
        if not sep or moved == text:
            return message
        payload = moved.encode("utf-8", "surrogateescape") + b"\0" + rest
        return message[:12] + _U32.pack(len(payload)) + payload


# -- import ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportPlan:
    """A checked stream, remapped for the destination; ``apply_import`` executes it."""

    remap: Remap
    connection: ConnectionData | None = None
    watches: list[WatchData | WatchDataExtended] = field(default_factory=list)
    transactions: dict[int, list[NodeData]] = field(default_factory=dict)
    #: The source's verdicts on those transactions (store/txfate.py), by tx-id.
    fates: dict[int, bytes] = field(default_factory=dict)
    #: Ancestors the destination lacks, top-down, with the permissions they get.
    ancestors: list[tuple[str, tuple[Permission, ...]]] = field(default_factory=list)
    nodes: list[NodeData] = field(default_factory=list)
    #: Entries naming the domain to add to each special node's permission list.
    special_entries: dict[str, list[Permission]] = field(default_factory=dict)
    features: int = SUPPORTED_FEATURES
    #: Nodes the domain will own and their memory (computed once, kept by a staged plan).
    owned: int = 0
    node_memory: int = 0

    @property
    def domid(self) -> int:
        return self.remap.new


def stream_domid(records: list[Record]) -> int:
    """The domain a migration stream is about (its ring, else DOMAIN_DATA, else its home)."""
    for record in records:
        if isinstance(record, ConnectionData) and isinstance(record.spec, RingSpec):
            return record.spec.domid
    for record in records:
        if isinstance(record, DomainData):
            return record.domid
    homes = {_home_domid(r.path) for r in records if isinstance(r, NodeData)} - {None}
    if len(homes) == 1:
        return homes.pop()  # type: ignore[return-value]
    raise ImportRefusedError(
        "the stream names no domain (no ring CONNECTION_DATA, DOMAIN_DATA or home)"
    )


def _home_domid(path: str) -> int | None:
    match path.split("/"):
        case ["", "local", "domain", domid, *_] if domid.isdigit():
            return int(domid)
    return None


def plan_import(
    engine: Engine,
    records: Iterable[Record],
    domid: int | None = None,
    *,
    staged: ImportPlan | None = None,
    fates: dict[int, bytes] | None = None,
) -> ImportPlan:
    """Check ``records`` (a validated migration stream) against ``engine``; change nothing.

    With ``staged`` (the plan of a pre-copy of the same domain's nodes, made earlier), the
    nodes are the staged ones and ``records`` carries the rest; the staged nodes are checked
    again against the engine as it is now, by their topmost paths. ``fates`` are the
    source's verdicts on its open transactions (store/txfate.py).
    """
    items: list[Record] = [r for r in records if not isinstance(r, End)]
    source = staged.remap.old if staged is not None else stream_domid(items)
    target = source if domid is None else domid
    plan = ImportPlan(Remap(source, target))
    _check_target(engine, target)
    _sort_records(plan, items, source)
    if staged is not None:
        if plan.nodes or staged.remap != plan.remap:
            raise ImportRefusedError("the stream does not complete the staged pre-copy")
        plan.nodes, plan.owned, plan.node_memory = staged.nodes, staged.owned, staged.node_memory
        _check_node_tops(engine, plan)
    else:
        _check_nodes(engine, plan)
    _check_specials(engine, plan, items)
    _check_fates(plan, fates or {})
    _check_quotas(engine, plan, node_stats=staged is None)
    return plan


def _check_target(engine: Engine, target: int) -> None:
    if target == 0 or target >= DOMID_FIRST_RESERVED:
        raise ImportRefusedError(f"domain {target} cannot be migrated in (0 and reserved ids)")
    domain = engine.domains.get(target)
    if domain is not None and domain.introduced:
        raise ImportRefusedError(f"domain {target} is already introduced at the destination")
    if engine.tree.owned[target]:
        raise ImportRefusedError(
            f"domain {target} already owns {engine.tree.owned[target]} nodes at the destination"
        )


def _sort_records(plan: ImportPlan, items: list[Record], source: int) -> None:
    remap = plan.remap
    for index, record in enumerate(items, start=1):
        match record:
            case ConnectionData():
                _check_connection(plan, index, record, source)
                plan.connection = record
            case WatchData() | WatchDataExtended():
                plan.watches.append(replace(record, path=remap.path(record.path)))
            case TransactionData():
                plan.transactions[record.tx_id] = []
            case NodeData() if record.committed and not record.path.startswith("@"):
                plan.nodes.append(remap.node(record))
            case NodeData() if not record.committed:
                plan.transactions[record.tx_id].append(remap.node(record))
            case NodeData():
                pass  # special nodes: _check_specials
            case DomainData() if record.domid == source:
                if record.features:
                    plan.features = record.features & SUPPORTED_FEATURES
            case _:
                what = type(record).__name__
                raise ImportRefusedError(
                    f"record {index}: {what} does not belong in a migration stream"
                )


def _check_connection(plan: ImportPlan, index: int, record: ConnectionData, source: int) -> None:
    if not isinstance(record.spec, RingSpec):
        raise ImportRefusedError(f"record {index}: a socket connection (fd {record.spec.fd})")
    if plan.connection is not None:
        raise ImportRefusedError(f"record {index}: a second connection (conn-id {record.conn_id})")
    if record.spec.domid != source:
        raise ImportRefusedError(
            f"record {index}: ring of domain {record.spec.domid}, not {source}"
        )


def _check_nodes(engine: Engine, plan: ImportPlan) -> None:
    tree = engine.tree
    created: set[str] = set()
    for node in plan.nodes:
        if tree.get(node.path) is not None:
            raise ImportRefusedError(f"node {node.path} exists at the destination")
        above = parent(node.path)
        if node.path != "/" and above not in created and tree.get(above) is None:
            plan.ancestors.extend(_missing_ancestors(engine, above, created))
        created.add(node.path)


def _check_node_tops(engine: Engine, plan: ImportPlan) -> None:
    """Existence and ancestors again for staged nodes: a node whose parent is not in the
    plan is a top; if it is absent, so is everything below it."""
    paths = {node.path for node in plan.nodes}
    created: set[str] = set()
    for node in plan.nodes:
        above = parent(node.path)
        if above in paths:
            continue
        if engine.tree.get(node.path) is not None:
            raise ImportRefusedError(f"node {node.path} exists at the destination")
        if above not in created and engine.tree.get(above) is None:
            plan.ancestors.extend(_missing_ancestors(engine, above, created))


def _missing_ancestors(
    engine: Engine, path: str, created: set[str]
) -> list[tuple[str, tuple[Permission, ...]]]:
    """``path`` and its missing ancestors, top-down, with the nearest existing one's perms
    (what a privileged WRITE creates)."""
    missing = [path]
    above = parent(path)
    while above not in created and engine.tree.get(above) is None:
        missing.append(above)
        above = parent(above)
    existing = engine.tree.get(above)
    perms = existing.perms if existing is not None else engine.tree.nodes["/"].perms
    created.update(missing)
    return [(here, perms) for here in reversed(missing)]


def _check_specials(engine: Engine, plan: ImportPlan, items: list[Record]) -> None:
    for record in items:
        if not isinstance(record, NodeData) or not record.path.startswith("@"):
            continue
        if record.path not in engine.tree.special_perms:
            raise ImportRefusedError(f"special node {record.path} is unknown at the destination")
        current = engine.tree.special_perms[record.path]
        named = [p for p in plan.remap.perms(record.perms)[1:] if p.domid == plan.domid]
        added = [p for p in named if not any(c.domid == p.domid for c in current[1:])]
        if added:
            plan.special_entries[record.path] = added


def _check_fates(plan: ImportPlan, fates: dict[int, bytes]) -> None:
    unknown = sorted(set(fates) - set(plan.transactions))
    if unknown:
        raise ImportRefusedError(
            f"a transaction fate names transaction {unknown[0]}, not in the stream"
        )
    plan.fates = fates


def _check_quotas(engine: Engine, plan: ImportPlan, *, node_stats: bool = True) -> None:
    domain = engine.domains.get(plan.domid)
    quotas = domain.quotas if domain is not None else engine.global_quotas
    target = plan.domid
    if node_stats:
        _node_stats(plan, quotas)
    memory = plan.node_memory
    conn = plan.connection
    if conn is not None:
        memory += len(conn.out_data)
        memory += sum(len(w.path) + len(encode_text(w.token)) for w in plan.watches)
    checks = (
        (q.NODES, plan.owned, f"it would own {plan.owned} nodes"),
        (q.WATCHES, len(plan.watches), f"it has {len(plan.watches)} watches"),
        (q.TRANSACTIONS, len(plan.transactions), f"it has {len(plan.transactions)} transactions"),
        (q.MEMORY, memory, f"it would use {memory} bytes"),
    )
    for name, value, why in checks:
        if q.exceeds(value, quotas.get(name, 0)):
            _refuse_quota(target, name, why, quotas)
    for tx_id, nodes in plan.transactions.items():
        if q.exceeds(len(nodes), quotas.get(q.TRANSACTION_NODES, 0)):
            _refuse_quota(
                target, q.TRANSACTION_NODES, f"transaction {tx_id} has {len(nodes)} nodes", quotas
            )


def _node_stats(plan: ImportPlan, quotas: dict[str, int]) -> None:
    """The nodes the domain will own, their memory, and the node-size quota for each."""
    target = plan.domid
    child_bytes: Counter[str] = Counter()
    for node in plan.nodes:
        child_bytes[parent(node.path)] += len(basename(node.path)) + 1
    owned = memory = 0
    limit = quotas.get(q.NODE_SIZE, 0)
    for node in plan.nodes:
        if node.perms[0].domid != target:
            continue
        size = NODE_HEADER_SIZE + 4 * len(node.perms) + len(node.value) + child_bytes[node.path]
        if q.exceeds(size, limit):
            _refuse_quota(target, q.NODE_SIZE, f"node {node.path} is {size} bytes", quotas)
        owned += 1
        memory += size + len(node.path)
    plan.owned, plan.node_memory = owned, memory


def _refuse_quota(domid: int, name: str, why: str, quotas: dict[str, int]) -> None:
    raise ImportRefusedError(
        f"quota refused: domain {domid}: {why}; the destination's {name} quota is {quotas[name]}"
    )


def apply_import(engine: Engine, plan: ImportPlan) -> Domain:
    """Execute a checked plan in one synchronous step (see the module doc)."""
    tree = engine.tree
    written = [(path, b"", perms) for path, perms in plan.ancestors]
    written += [(record.path, record.value, record.perms) for record in plan.nodes]
    _insert(tree, written)
    for name, entries in plan.special_entries.items():
        tree.special_perms[name] = (*tree.special_perms[name], *entries)
    # Other connections see the writes; the migrated guest already saw these nodes.
    if any(conn.watches for conn in engine.connections):
        for path, _value, perms in written:
            fire(engine, None, path, exact=False, perms=perms)
    domain = _introduce(engine, plan)
    fire_special(engine, INTRODUCE_DOMAIN, plan.domid)
    if plan.connection is not None:
        engine.connections.append(_connection(engine, plan, domain))
    engine.on_domain_introduced(domain)
    return domain


def _insert(tree: Tree, items: list[tuple[str, bytes, tuple[Permission, ...]]]) -> None:
    """Add new nodes, parents first, appending each to its parent's children: what
    ``Tree.put`` + ``link_child`` do, in one pass (this is most of a migration's downtime).
    A parent that existed before gets a new generation, as a write of a child gives it in C
    (a transaction that read it then conflicts)."""
    nodes = tree.nodes
    owned: Counter[int] = Counter()
    memory: Counter[int] = Counter()
    generation = tree.generation
    for path, value, perms in items:
        cut = path.rfind("/")
        above = nodes[path[:cut] or "/"]
        name = path[cut + 1 :]
        generation += 1
        if above.generation <= tree.generation:
            above.generation = generation
            generation += 1
        nodes[path] = Node(value, perms, [], generation, 0)
        above.children.append(name)
        above.childlen += len(name) + 1
        owner = perms[0].domid
        owned[owner] += 1
        memory[owner] += NODE_HEADER_SIZE + 4 * len(perms) + len(value) + len(path)
        memory[above.perms[0].domid] += len(name) + 1
    tree.generation = generation
    tree.owned.update(owned)
    tree.owned_memory.update(memory)


def _introduce(engine: Engine, plan: ImportPlan) -> Domain:
    domain = engine.domain(plan.domid)
    domain.introduced = True
    domain.features = plan.features
    ring = plan.connection.spec if plan.connection is not None else None
    domain.remote_port = ring.evtchn if isinstance(ring, RingSpec) else 0
    # Fresh local port and unique id: the source's numbers mean nothing here.
    domain.local_port = engine._next_local_port
    engine._next_local_port += 1
    domain.unique_id = engine._next_unique_id
    engine._next_unique_id += 1
    return domain


def _connection(engine: Engine, plan: ImportPlan, domain: Domain) -> Connection:
    record = plan.connection
    assert record is not None and isinstance(record.spec, RingSpec)
    conn = Connection(record.conn_type, plan.domid, domain=domain)
    tdomid = record.spec.tdomid
    if tdomid not in (DOMID_INVALID, plan.remap.old):
        conn.target = tdomid
    conn.decoder.feed(record.in_data)
    conn.out_partial = record.out_data[: record.out_resp_len]
    for message in _messages(record.out_data[record.out_resp_len :]):
        if len(message) >= HEADER_SIZE and _U32.unpack_from(message)[0] == Op.WATCH_EVENT:
            conn.queue_event(plan.remap.event(message)[HEADER_SIZE:], dedup=False)
        else:
            conn.queue_raw(message)
    for watch in plan.watches:
        depth = None
        if isinstance(watch, WatchDataExtended) and watch.depth != DEPTH_UNLIMITED:
            depth = watch.depth
        canonical = canonicalize(watch.path, conn.home)
        conn.watches.append(Watch(watch.path, encode_text(watch.token), canonical, depth))
    for tx_id, nodes in plan.transactions.items():
        tx = Transaction(tx_id)
        conn.transactions[tx_id] = tx
        conn.next_tx_id = max(conn.next_tx_id, tx_id + 1)
        for node in nodes:
            _restore_tx_node(engine, tx, node)
        _rebuild_tx_children(engine, tx)
        _quiet_parents(engine, tx)
        fate = plan.fates.get(tx_id)
        if fate is not None:
            apply_fate(tx, fate)
    return conn


def _quiet_parents(engine: Engine, tx: Transaction) -> None:
    """A parent the transaction rewrote only to add or remove a child fires nothing at
    commit (C fires for the child alone); the stream does not say which nodes were written
    explicitly, so a node with its committed value and permissions counts as such a parent."""
    parents = {parent(path) for path in tx.touched if path != "/"}
    for path, entry in tx.touched.items():
        committed = engine.tree.get(path)
        if (
            entry.fire
            and path in parents
            and entry.node is not None
            and committed is not None
            and (entry.node.value, entry.node.perms) == (committed.value, committed.perms)
        ):
            entry.fire = False


def _messages(data: bytes) -> Iterator[bytes]:
    offset = 0
    while offset + HEADER_SIZE <= len(data):
        (length,) = _U32.unpack_from(data, offset + 12)
        end = offset + HEADER_SIZE + length
        yield data[offset:end]
        offset = end
    if offset < len(data):
        yield data[offset:]
