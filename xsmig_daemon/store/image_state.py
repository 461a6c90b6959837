"""Engine state <-> migration-stream records (``image.records``), both ways, no bytes.

``state_records(engine)`` yields, in C HEAD's live-update order: GLOBAL_DATA,
GLOBAL_QUOTA_DATA, each connection followed by its watches and then by its open
transactions (TRANSACTION_DATA + one NODE_DATA per touched node, which C never writes), the
committed tree in pre-order from ``/``, ``@releaseDomain``, ``@introduceDomain``, and
DOMAIN_DATA for every known domain. The header and the END record are the writer's job.

``restore_engine(records)`` builds an Engine from such a sequence. Generation counts are not
in the stream: a restored transaction counts as unconflicted for every node whose committed
state still equals what the transaction saw, and as conflicting for a read-only node that
differs (so its commit answers EAGAIN, as it would have before the dump).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

from ..image.records import (
    DEPTH_UNLIMITED,
    DOMID_INVALID,
    ConnectionData,
    ConnType,
    DomainData,
    GlobalData,
    GlobalQuotaData,
    NodeAccess,
    NodeData,
    Record,
    RingSpec,
    SocketSpec,
    TransactionData,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
    decode_text,
    encode_text,
)
from ..wire.header import HEADER_SIZE, decode_header, message_spans
from ..wire.ops import Op
from ..wire.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, basename, canonicalize, parent
from .connection import Connection, Watch
from .engine import Engine
from .transaction import Transaction, TxNode
from .tree import Node, Tree


def state_records(engine: Engine, *, skip: Collection[Connection] = ()) -> Iterator[Record]:
    """The state as records; connections in ``skip`` (e.g. an exporter's own) are left out."""
    yield from head_records(engine, skip=skip)
    yield from tree_records(engine)
    yield from tail_records(engine)


def head_records(engine: Engine, *, skip: Collection[Connection] = ()) -> Iterator[Record]:
    """Everything before the tree: globals, quotas, connections with their watches and
    transactions."""
    yield GlobalData(engine.listen_fd, engine.evtchn_fd)
    yield GlobalQuotaData(domain_quotas=tuple(engine.global_quotas.items()))
    connections = [conn for conn in engine.connections if conn not in skip]
    for conn_id, conn in enumerate(connections, start=1):
        yield from _connection_records(conn_id, conn)
    if engine.compat.special_nodes_first:
        yield from _special_records(engine)


def _special_records(engine: Engine) -> Iterator[NodeData]:
    for special in (RELEASE_DOMAIN, INTRODUCE_DOMAIN):
        yield NodeData(special, b"", engine.tree.special_perms[special])


def tree_records(engine: Engine) -> Iterator[NodeData]:
    """The committed tree in pre-order. Lazy: a caller that yields between records sees
    the tree as it is then (a pre-copy tracks what changed meanwhile)."""
    for path, node in engine.tree.walk():
        yield NodeData(path, node.value, node.perms)


def tail_records(engine: Engine) -> Iterator[Record]:
    """Everything after the tree: the special nodes (unless this version dumps them before
    the tree, store/compat.py: 4.17 does) and every known domain."""
    if not engine.compat.special_nodes_first:
        yield from _special_records(engine)
    yield from _domain_records(engine)


def _connection_records(conn_id: int, conn: Connection) -> Iterator[Record]:
    spec: RingSpec | SocketSpec
    unique_id = None
    if conn.kind is ConnType.RING:
        domain = conn.domain
        tdomid = DOMID_INVALID if conn.target is None else conn.target
        spec = RingSpec(conn.domid, tdomid, domain.local_port if domain else 0)
        unique_id = domain.unique_id if domain else None
    else:
        spec = SocketSpec(conn.fd)
    yield ConnectionData(
        conn_id,
        spec,
        in_data=conn.decoder.pending,
        out_data=conn.out_partial + b"".join(conn.queued_messages),
        out_resp_len=len(conn.out_partial),
        unique_id=unique_id,
    )
    for watch in conn.watches:
        token = decode_text(watch.token)
        if watch.depth is None:
            yield WatchData(conn_id, watch.path, token)
        else:
            yield WatchDataExtended(conn_id, watch.path, token, watch.depth)
    for tx in conn.transactions.values():
        yield TransactionData(conn_id, tx.tx_id)
        for path, entry in tx.touched.items():
            yield _tx_node_record(conn_id, tx.tx_id, path, entry)


def _tx_node_record(conn_id: int, tx_id: int, path: str, entry: TxNode) -> NodeData:
    if entry.node is None:
        # Deleted by the transaction (access 0), or read and found missing (READ, no perms).
        access = NodeAccess.DELETED if entry.access & NodeAccess.WRITTEN else NodeAccess.READ
        return NodeData(path, b"", (), conn_id, tx_id, access)
    return NodeData(path, entry.node.value, entry.node.perms, conn_id, tx_id, entry.access)


def _domain_records(engine: Engine) -> Iterator[DomainData]:
    known = {0, *engine.domains}
    known.update(domid for domid, count in engine.tree.owned.items() if count > 0)
    for domid in sorted(known):
        domain = engine.domains.get(domid)
        if domain is None:
            yield DomainData(domid, 0, tuple(engine.global_quotas.items()))
        else:
            yield DomainData(domid, domain.features, tuple(domain.quotas.items()))


# -- restore --------------------------------------------------------------------------------


def restore_engine(records: Iterable[Record], tree: Tree | None = None) -> Engine:
    """An engine holding ``records``; committed nodes go into ``tree`` if given (a tree
    restored earlier, e.g. by a pre-copy: they replace what it holds), else a fresh one."""
    engine = Engine()
    if tree is not None:
        engine.tree = tree
    else:
        engine.tree.clear()
    by_id: dict[int, Connection] = {}
    tx_nodes: list[tuple[Transaction, NodeData]] = []
    for record in records:
        if isinstance(record, GlobalData):
            engine.listen_fd, engine.evtchn_fd = record.rw_socket_fd, record.evtchn_fd
        elif isinstance(record, GlobalQuotaData):
            engine.global_quotas.update(record.domain_quotas)
            engine.global_quotas.update(record.global_quotas)
        elif isinstance(record, ConnectionData):
            by_id[record.conn_id] = _restore_connection(engine, record)
        elif isinstance(record, WatchData | WatchDataExtended | UnwrittenDepthWatch):
            # A Xen 4.22 writer-layout record never held its depth: a depth-less watch.
            _restore_watch(by_id[record.conn_id], record)
        elif isinstance(record, TransactionData):
            conn = by_id[record.conn_id]
            conn.transactions[record.tx_id] = Transaction(record.tx_id)
            conn.next_tx_id = max(conn.next_tx_id, record.tx_id + 1)
        elif isinstance(record, NodeData) and record.committed:
            restore_node(engine.tree, record)
        elif isinstance(record, NodeData):
            tx_nodes.append((by_id[record.conn_id].transactions[record.tx_id], record))
        elif isinstance(record, DomainData):
            domain = engine.domain(record.domid)
            domain.features = record.features
            domain.quotas.update(record.quotas)
    for tx, record in tx_nodes:
        _restore_tx_node(engine, tx, record)
    for tx in {id(tx): tx for tx, _ in tx_nodes}.values():
        _rebuild_tx_children(engine, tx)
    # Domains introduced after the restore get ports and unique ids the stream does not use.
    domains = engine.domains.values()
    engine._next_local_port = 1 + max((d.local_port for d in domains), default=0)
    engine._next_unique_id = 1 + max((d.unique_id or 0 for d in domains), default=0)
    return engine


def _restore_connection(engine: Engine, record: ConnectionData) -> Connection:
    if isinstance(record.spec, RingSpec):
        domain = engine.domain(record.spec.domid)
        domain.introduced = True
        domain.local_port = record.spec.evtchn
        domain.unique_id = record.unique_id
        conn = Connection(ConnType.RING, record.spec.domid, domain=domain)
        if record.spec.tdomid != DOMID_INVALID:
            conn.target = record.spec.tdomid
    else:
        conn = Connection(ConnType.SOCKET, 0, fd=record.spec.fd)
    conn.decoder.feed(record.in_data)
    conn.out_partial = record.out_data[: record.out_resp_len]
    for message, is_event in _split_messages(record.out_data[record.out_resp_len :]):
        if is_event:
            conn.queue_event(message[HEADER_SIZE:], dedup=False)
        else:
            conn.queue_raw(message)
    engine.connections.append(conn)
    return conn


def _split_messages(data: bytes) -> Iterator[tuple[bytes, bool]]:
    """Each queued message, and whether it is a watch event (a partial one is not)."""
    for start, end in message_spans(data):
        message = data[start:end]
        has_header = len(message) >= HEADER_SIZE
        yield message, has_header and decode_header(message)[0] == Op.WATCH_EVENT


def _restore_watch(
    conn: Connection, record: WatchData | WatchDataExtended | UnwrittenDepthWatch
) -> None:
    depth = None
    if isinstance(record, WatchDataExtended) and record.depth != DEPTH_UNLIMITED:
        depth = record.depth
    canonical = canonicalize(record.path, conn.home)
    conn.watches.append(Watch(record.path, encode_text(record.token), canonical, depth))


def restore_node(tree: Tree, record: NodeData) -> None:
    """Store a committed node (replacing one there, children kept; a new one is linked to
    its parent, which must be there)."""
    if record.path.startswith("@"):
        tree.special_perms[record.path] = record.perms
        return
    existing = tree.get(record.path)
    children = list(existing.children) if existing is not None else []
    tree.put(record.path, Node(record.value, record.perms, children))
    if record.path != "/" and existing is None:
        if tree.get(parent(record.path)) is None:
            raise ValueError(f"node {record.path}: parent missing in the restored tree")
        tree.link_child(parent(record.path), basename(record.path))


def _restore_tx_node(engine: Engine, tx: Transaction, record: NodeData) -> None:
    committed = engine.tree.get(record.path)
    generation = committed.generation if committed is not None else None
    node: Node | None = None
    if record.perms:
        node = Node(record.value, record.perms, [])
    access = NodeAccess(record.access)
    if not record.perms and access == NodeAccess.DELETED:
        access = NodeAccess.READ | NodeAccess.WRITTEN
    if access == NodeAccess.READ and not _same_content(committed, node):
        generation = -1
    # Pending watch events are not in the stream: every node the transaction changed
    # fires at commit (a descendant of a removed subtree then fires like its root).
    tx.touched[record.path] = TxNode(
        node,
        generation,
        access,
        first_perms=committed.perms if committed is not None else None,
        fire=bool(access & NodeAccess.WRITTEN),
        fire_exact=False,
    )


def _same_content(committed: Node | None, seen: Node | None) -> bool:
    if committed is None or seen is None:
        return committed is None and seen is None
    return committed.value == seen.value and committed.perms == seen.perms


def _rebuild_tx_children(engine: Engine, tx: Transaction) -> None:
    """Child lists are not in the stream: committed children, minus deleted, plus created."""
    for path, entry in tx.touched.items():
        if entry.node is None:
            continue
        committed = engine.tree.get(path)
        children = list(committed.children) if committed is not None else []
        prefix = "/" if path == "/" else path + "/"
        for other, other_entry in tx.touched.items():
            if parent(other) != path or other == path or not other.startswith(prefix):
                continue
            name = basename(other)
            if other_entry.node is None and name in children:
                children.remove(name)
            elif other_entry.node is not None and name not in children:
                children.append(name)
        entry.node.set_children(children)
