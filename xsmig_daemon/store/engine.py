"""The xenstore request engine: one synchronous ``handle()`` per request.

Theory of operation: a transport creates a ``Connection`` per client (``connect_socket``) or
uses the one ``introduce`` made for a domain, feeds received bytes to ``receive()``, and
sends whatever ``conn.output_chunk()`` returns. ``receive()`` processes complete requests in
order while the connection may make progress (its output is below the limit, and for a
guest, fewer than ``outstanding`` replies are waiting); the rest stays in the decoder, which
is the "received but not processed" input of the migration stream. Replies and watch events
are appended to the connection's output in the order C xenstored produces them: events a
request fires come before its own reply, the initial event of a WATCH after the ``OK``.
``on_output`` tells the transport which connections got new output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ..image.records import ConnType, NodeAccess, Permission
from ..wire.framing import Message, ProtocolError, split_strings
from ..wire.ops import Op
from ..wire.paths import (
    INTRODUCE_DOMAIN,
    RELEASE_DOMAIN,
    InvalidPathError,
    basename,
    canonicalize,
    decode_path,
    join,
    parent,
    validate,
)
from . import quotas as q
from .compat import SPEC, Compat
from .connection import Connection
from .domains import Domain
from .errors import XsError
from .handlers import HANDLERS, require_privileged
from .perms import Access, PermList, access_for
from .transaction import Transaction
from .tree import Node, Tree
from .watches import fire, fire_special

PAYLOAD_MAX = 4096
#: A transport's CONTROL command: (caller, arguments after the name) -> reply payload.
ControlExtension = Callable[[Connection, list[bytes]], bytes]

#: Operations that use the header's tx_id (the others ignore it, as in C).
_TX_OPS = frozenset(
    {
        Op.DIRECTORY,
        Op.READ,
        Op.GET_PERMS,
        Op.TRANSACTION_START,
        Op.TRANSACTION_END,
        Op.WRITE,
        Op.MKDIR,
        Op.RM,
        Op.SET_PERMS,
        Op.DIRECTORY_PART,
    }
)


class Engine:
    def __init__(self) -> None:
        self.tree = Tree()
        #: Whose request-level behaviour to follow (store/compat.py); ``set_compat`` changes it.
        self.compat: Compat = SPEC
        self.connections: list[Connection] = []
        self.domains: dict[int, Domain] = {}
        self.global_quotas = q.default_quotas()
        self.listen_fd = -1
        self.evtchn_fd = -1
        #: CONTROL commands a transport adds (first argument -> reply payload), e.g. the
        #: mock's ``introspect``; they need a privileged caller like every CONTROL.
        self.control_extensions: dict[bytes, ControlExtension] = {}
        self.log: deque[str] = deque(maxlen=1000)
        #: CONTROL log switches (C's defaults: obj and io).
        self.trace_switches: set[str] = {"obj", "io"}
        self._next_local_port = 1
        self._next_unique_id = 1
        self.on_output: Callable[[Connection], None] = lambda conn: None
        self.on_domain_introduced: Callable[[Domain], None] = lambda domain: None
        self.on_domain_released: Callable[[Domain], None] = lambda domain: None
        #: CONTROL live-update, set by a transport able to hand over: the reply text, or
        #: None when the request is parked (see store/liveupdate.py).
        self.live_update: Callable[[Connection, Message, list[str]], str | None] | None = None

    def set_compat(self, compat: Compat, *, fresh: bool) -> None:
        """Answer as ``compat``'s daemon; a ``fresh`` store also gets its initial special
        node permissions (a restored one keeps those of its image)."""
        self.compat = compat
        if fresh and not compat.domid_any:
            self.tree.special_perms[RELEASE_DOMAIN] = self.tree.special_perms[INTRODUCE_DOMAIN]

    def exceeds(self, new_value: int, quota: int) -> bool:
        """Whether ``new_value`` is over ``quota`` by this version's rule (0 = off)."""
        if self.compat.quota_at_limit:
            return q.exceeds(new_value, quota)
        return quota != 0 and new_value > quota

    # -- transport interface ------------------------------------------------------------

    def connect_socket(self, fd: int = -1) -> Connection:
        conn = Connection(ConnType.SOCKET, 0, fd=fd)
        self.connections.append(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        """A socket client went away: its watches and transactions go with it."""
        if conn in self.connections:
            self.connections.remove(conn)
        conn.watches.clear()
        conn.transactions.clear()
        conn.clear_output()

    def receive(self, conn: Connection, data: bytes) -> None:
        conn.decoder.feed(data)
        self.process(conn)

    def process(self, conn: Connection) -> None:
        """Handle buffered complete requests while ``conn`` may make progress."""
        while conn.can_process(self.quota(conn, q.OUTSTANDING)):
            try:
                message = conn.decoder.next_message()
            except ProtocolError as exc:
                self.log.append(f"{conn!r}: {exc}")
                conn.broken = True
                break
            if message is None:
                break
            self.handle(conn, message)

    def wants_input(self, conn: Connection) -> bool:
        return conn.wants_input(self.quota(conn, q.OUTSTANDING))

    def handle(self, conn: Connection, message: Message) -> None:
        try:
            self._dispatch(conn, message)
        except XsError as exc:
            self.reply(conn, message, exc.name.encode() + b"\0", op=Op.ERROR)
        except InvalidPathError:
            self.reply(conn, message, b"EINVAL\0", op=Op.ERROR)
        except Exception as exc:
            # EIO is what C answers for an internal inconsistency.
            self.log.append(f"{conn!r}: internal error on {message.describe()}: {exc!r}")
            self.reply(conn, message, b"EIO\0", op=Op.ERROR)

    def _dispatch(self, conn: Connection, message: Message) -> None:
        if message.op == Op.CONTROL and self.control_extensions:
            args = split_strings(message.payload)
            extension = self.control_extensions.get(args[0]) if args else None
            if extension is not None:
                require_privileged(conn, message)
                self.reply(conn, message, extension(conn, args[1:]))
                return
        handler = HANDLERS.get(message.op)
        if handler is None or not self.compat.has_op(message.op):
            raise XsError("ENOSYS", f"unknown operation {message.op}")
        tx = None
        if message.op in _TX_OPS and message.tx_id:
            tx = conn.transactions.get(message.tx_id)
            if tx is None:
                raise XsError("ENOENT", f"no transaction {message.tx_id}")
        handler(self, conn, message, tx)

    def reply(self, conn: Connection, message: Message, payload: bytes, op: int = -1) -> None:
        if len(payload) > PAYLOAD_MAX:
            op, payload = Op.ERROR, b"E2BIG\0"
        conn.queue_reply(message.op if op < 0 else op, message.req_id, message.tx_id, payload)
        self.on_output(conn)

    # -- domains and quotas -------------------------------------------------------------

    def domain(self, domid: int) -> Domain:
        found = self.domains.get(domid)
        if found is None:
            found = Domain(domid, quotas=dict(self.global_quotas))
            self.domains[domid] = found
        return found

    def quota(self, conn: Connection, name: str) -> int:
        """The quota that applies to ``conn`` (0 = unlimited; privileged: unlimited)."""
        if conn.privileged:
            return 0
        quotas = conn.domain.quotas if conn.domain is not None else self.global_quotas
        return quotas.get(name, 0)

    def memory_used(self, domid: int) -> int:
        """Memory charged to a domain: its nodes, its watches, its queued output."""
        used = self.tree.owned_memory[domid]
        conn = self.domain_connection(domid)
        if conn is not None:
            used += sum(len(w.canonical) + len(w.token) for w in conn.watches)
            used += conn.output_size
        return used

    def domain_connection(self, domid: int) -> Connection | None:
        for conn in self.connections:
            if conn.kind is ConnType.RING and conn.domid == domid:
                return conn
        return None

    def introduced(self, domid: int) -> Domain:
        domain = self.domains.get(domid)
        if domain is None or not domain.introduced:
            raise XsError("ENOENT", f"domain {domid} not introduced")
        return domain

    # -- node access (global or through a transaction) ----------------------------------

    def access(self, conn: Connection, perms: PermList) -> Access:
        return access_for(conn.domid, conn.privileged, conn.target, perms)

    def path_arg(self, conn: Connection, raw: bytes, *, allow_special: bool = False) -> str:
        path = canonicalize(decode_path(raw), conn.home)
        compat = self.compat
        path_max = self.quota(conn, q.PATH_MAX)
        if compat.path_max_for_everyone and conn.privileged:
            path_max = self.global_quotas[q.PATH_MAX]
        validate(
            path,
            allow_special=allow_special,
            path_max=path_max,
            path_max_inclusive=compat.path_max_inclusive,
            abs_max=compat.abs_path_max,
        )
        return path

    def read(self, conn: Connection, tx: Transaction | None, path: str) -> Node | None:
        if tx is None:
            return self.tree.get(path)
        if path not in tx.touched:
            limit = self.quota(conn, q.TRANSACTION_NODES)
            if self.exceeds(len(tx.touched) + 1, limit):
                tx.failed = True
                raise XsError("ENOSPC", f"transaction {tx.tx_id} touches too many nodes")
        entry = tx.entry(self.tree, path)
        entry.access |= NodeAccess.READ
        return entry.node

    def check_writes(
        self, conn: Connection, tx: Transaction | None, writes: list[tuple[str, Node]]
    ) -> None:
        """Quota checks for a set of node writes, all done before any of them happens."""
        limit = self.quota(conn, q.NODE_SIZE)
        compat = self.compat
        for path, node in writes:
            size = (
                compat.node_header_size
                + compat.perm_entry_size * len(node.perms)
                + len(node.value)
                + node.childlen
            )
            if limit and size >= limit + int(not compat.node_size_at_limit):
                if tx is not None:
                    # C cannot undo a half-done change inside a transaction: it fails it.
                    tx.failed = True
                raise XsError("ENOSPC", f"node {path} would be {size} bytes")
        limit = self.quota(conn, q.MEMORY)
        if tx is not None or not limit:
            return
        growth = 0
        for path, node in writes:
            old = self.tree.get(path)
            if node.owner == conn.domid:
                growth += node.size() + len(path)
            if old is not None and old.owner == conn.domid:
                growth -= old.size() + len(path)
        if growth > 0 and self.exceeds(self.memory_used(conn.domid) + growth, limit):
            raise XsError("ENOMEM", f"domain {conn.domid} memory quota ({limit} bytes)")

    def write(
        self,
        conn: Connection,
        tx: Transaction | None,
        path: str,
        node: Node,
        *,
        checked: bool = False,
    ) -> None:
        """Store ``node``; quota checks unless the caller ``checked`` them already."""
        if not checked:
            self.check_writes(conn, tx, [(path, node)])
        if tx is None:
            self.tree.put(path, node)
            return
        self.read(conn, tx, path)
        entry = tx.touched[path]
        prior = entry.node
        if prior is None:
            tx.node_created = True
            tx.count_owner(node.owner, 1)
        elif prior.owner != node.owner:
            tx.count_owner(prior.owner, -1)
            tx.count_owner(node.owner, 1)
        # C bumps the global generation for a transaction's private write too.
        node.generation = self.tree.next_generation()
        entry.node = node
        entry.access |= NodeAccess.WRITTEN

    def delete(self, conn: Connection, tx: Transaction | None, path: str) -> None:
        if tx is None:
            self.tree.remove(path)
            return
        self.read(conn, tx, path)
        entry = tx.touched[path]
        if entry.node is not None:
            tx.count_owner(entry.node.owner, -1)
        entry.node = None
        entry.access |= NodeAccess.WRITTEN

    def get_node(self, conn: Connection, tx: Transaction | None, path: str, need: Access) -> Node:
        """The node if ``conn`` has ``need`` on it; else ENOENT/EACCES as C decides."""
        node = self.read(conn, tx, path)
        if node is not None and self.access(conn, node.perms) & need == need:
            return node
        # C hides whether the node exists unless the nearest existing ancestor grants the
        # caller some of the access it asked for (errno_from_parents).
        error = "ENOENT" if node is None else "EACCES"
        ancestor = path
        while ancestor != "/":
            ancestor = parent(ancestor)
            found = self.read(conn, tx, ancestor)
            if found is not None:
                if not self.access(conn, found.perms) & need:
                    error = "EACCES"
                break
        raise XsError(error, path)

    def owned_nodes(self, domid: int) -> int:
        """The nodes charged to ``domid``: in 4.20 a special node counts for its owner."""
        count = self.tree.owned[domid]
        if self.compat.special_nodes_are_nodes:
            count += sum(1 for perms in self.tree.special_perms.values() if perms[0].domid == domid)
        return count

    def commit_count_error(self, conn: Connection, tx: Transaction) -> str | None:
        """C's node-count check at commit, made before the conflict check: a domain whose
        count would go negative (the same nodes changed outside) fails with ENOMEM, one over
        the node quota after the committer created nodes with ENOSPC."""
        check_quota = tx.node_created and not conn.privileged
        limit = self.global_quotas[q.NODES]
        for domid, change in tx.owner_delta.items():
            if domid == 0:
                continue
            count = self.owned_nodes(domid) + change
            if count < 0 and not self.compat.negative_count_fails:
                count = 0
            if check_quota and limit and count >= limit:
                return "ENOSPC"
            if count < 0:
                return "ENOMEM"
        return None

    def owned_count(self, domid: int, tx: Transaction | None) -> int:
        count = self.owned_nodes(domid)
        if tx is not None:
            for path, entry in tx.touched.items():
                if not entry.access & NodeAccess.WRITTEN:
                    continue
                committed = self.tree.get(path)
                was = committed is not None and committed.owner == domid
                now = entry.node is not None and entry.node.owner == domid
                count += int(now) - int(was)
        return count

    def create(self, conn: Connection, tx: Transaction | None, path: str, value: bytes) -> Node:
        """Create ``path`` and any missing ancestors (C's construct_node + create_node)."""
        missing = [path]
        above = parent(path)
        while (ancestor := self.read(conn, tx, above)) is None:
            missing.append(above)
            above = parent(above)
        if not self.access(conn, ancestor.perms) & Access.WRITE:
            raise XsError("EACCES", f"no write access to {above} to create {path}")
        perms = ancestor.perms
        if not conn.privileged:
            perms = (Permission(perms[0].access, conn.domid), *perms[1:])
        limit = self.quota(conn, q.NODES)
        if self.exceeds(self.owned_count(conn.domid, tx) + len(missing), limit):
            raise XsError("ENOSPC", f"domain {conn.domid} owns too many nodes")
        parent_node = ancestor.copy()
        parent_node.add_child(basename(missing[-1]))
        writes = [(above, parent_node)]
        for index in range(len(missing) - 1, -1, -1):
            children = [basename(missing[index - 1])] if index else []
            writes.append((missing[index], Node(value if index == 0 else b"", perms, children)))
        self.check_writes(conn, tx, writes)
        for here, node in writes:
            self.write(conn, tx, here, node, checked=True)
        return writes[-1][1]

    def delete_tree(
        self, conn: Connection | None, tx: Transaction | None, path: str, node: Node, exact: bool
    ) -> None:
        """Delete ``path`` and its subtree, children first, firing one event per node."""
        actor = conn or _SYSTEM
        for child in list(node.children):
            child_path = join(path, child)
            child_node = self.read(actor, tx, child_path)
            if child_node is None:
                # A child the transaction's copy of the parent lists was removed outside
                # it: C's tree walk stops there ("corrupt") with what it deleted so far.
                raise XsError("EIO", f"child {child_path} vanished during RM")
            self.delete_tree(conn, tx, child_path, child_node, True)
        fire(self, tx, path, exact=exact, perms=node.perms)
        self.delete(actor, tx, path)

    def unlink_child(self, conn: Connection, tx: Transaction | None, path: str) -> None:
        above = parent(path)
        parent_node = self.read(conn, tx, above)
        if parent_node is not None:
            updated = parent_node.copy()
            name = basename(path)
            if name not in updated.children:
                # The node was created outside the transaction after it read the parent.
                raise XsError("EIO", f"{above} does not list {name}")
            updated.remove_child(name)
            # Removing a child entry only shrinks the parent: C skips quota checks here.
            self.write(conn, tx, above, updated, checked=True)

    # -- domains ------------------------------------------------------------------------

    def introduce(self, domid: int, remote_port: int) -> Domain:
        domain = self.domain(domid)
        conn = self.domain_connection(domid)
        if domain.introduced and conn is not None:
            # C rebinds the event channel and resets the connection.
            domain.remote_port = remote_port
            conn.watches.clear()
            conn.transactions.clear()
            conn.clear_output()
            conn.decoder = type(conn.decoder)()
            return domain
        domain.introduced = True
        domain.remote_port = remote_port
        domain.local_port = self._next_local_port
        self._next_local_port += 1
        if self.compat.domain_features:
            domain.unique_id = self._next_unique_id
            self._next_unique_id += 1
        else:
            domain.features = 0
        self.connections.append(Connection(ConnType.RING, domid, domain=domain))
        if domid != 0:
            fire_special(self, INTRODUCE_DOMAIN, domid)
        self.on_domain_introduced(domain)
        return domain

    def release(self, domid: int) -> None:
        domain = self.introduced(domid)
        conn = self.domain_connection(domid)
        if self.compat.release_drops_reference and domain.referenced_by:
            domain.referenced_by.pop()
            if conn is not None and self.compat.release_deletes_watches_first:
                conn.watches.clear()
            return
        for known in self.domains.values():
            known.referenced_by[:] = [d for d in known.referenced_by if d != domid]
        if conn is not None:
            conn.watches.clear()
            self.disconnect(conn)
        for other in self.connections:
            if other.target == domid:
                other.target = None
        domain.introduced = False
        self.domains.pop(domid, None)
        self.remove_domain_nodes(domid)
        fire_special(self, RELEASE_DOMAIN, domid)
        self.on_domain_released(domain)

    def remove_domain_nodes(self, domid: int) -> None:
        """Delete nodes the domain owns and mark entries naming it stale (as C does)."""
        owned = [path for path, node in self.tree.walk() if node.owner == domid and path != "/"]
        for path in owned:
            node = self.tree.get(path)
            if node is not None:
                self.delete_tree(None, None, path, node, False)
                self.unlink_child(_SYSTEM, None, path)
        for path, node in self.tree.walk():
            perms = stale_entries_for(node.perms, domid)
            if perms is not node.perms:
                self.tree.changing(path)
                node.perms = perms
        for name, perms in self.tree.special_perms.items():
            self.tree.special_perms[name] = stale_entries_for(perms, domid)


def stale_entries_for(perms: PermList, domid: int) -> PermList:
    """``perms`` with the non-owner entries naming ``domid`` marked stale."""
    if not any(p.domid == domid and not p.stale for p in perms[1:]):
        return perms
    rest = (Permission(p.access, p.domid, p.stale or p.domid == domid) for p in perms[1:])
    return (perms[0], *rest)


#: Acts for the daemon itself (node cleanup): privileged, never queued to.
_SYSTEM = Connection(ConnType.SOCKET, 0)
