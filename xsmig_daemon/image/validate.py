"""Semantic validation of a decoded stream, one record at a time.

The decoder has already checked framing. ``StreamValidator`` checks the dependency order of
spec section 6 and, for a C loader profile, what that daemon needs to load the stream
without aborting or silently losing state. It keeps O(records) memory only as 64-bit hashes
of committed paths (a collision, ~1e-7 for a million nodes, could hide a duplicate path).

Errors (``SemanticError``, ``ProfileError``) name the record; ``warnings`` collects what a
loader would drop or tolerate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..wire.features import FEATURE_WATCHDEPTH
from . import watchext
from .decoder import Located
from .errors import ImageError, ProfileError, SemanticError, type_name
from .profiles import SPEC, Profile, as_profile
from .records import (
    DOMID_INVALID,
    STREAM_V2,
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Record,
    RingSpec,
    TransactionData,
    UnknownRecord,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
)

ROOT = "/"


def parent_path(path: str) -> str:
    cut = path.rfind("/")
    return ROOT if cut <= 0 else path[:cut]


class StreamValidator:
    def __init__(
        self,
        header: Header,
        profile: Profile = SPEC,
        *,
        migration: bool = False,
        preorder: bool = False,
        collect_defects: bool = False,
    ) -> None:
        self.header = header
        self.profile = profile
        #: Defects a converter repairs (a Xen 4.22 writer-layout WATCH_DATA_EXTENDED, a
        #: DOMAIN_DATA for a domain the loader does not know) are collected in ``defects``
        #: instead of raised, so that every one of them can be named.
        self.collect_defects = collect_defects
        self.defects: list[ImageError] = []
        #: For a producer that walks a tree (the exporter): committed nodes must come in
        #: pre-order, checked against the current ancestor path, so memory stays O(depth)
        #: instead of O(nodes). Such a walk cannot repeat a path, so duplicates (which need
        #: the O(nodes) set) are not looked for.
        self.preorder = preorder
        self._ancestors: list[str] = []
        #: A migration stream (spec section 7) carries one domain's nodes; their ancestors
        #: already exist in the loader, so a node may name a parent the stream never sent.
        self.migration = migration
        self._assumed_parents: set[int] = set()
        self.warnings: list[str] = []
        self._dropped: Counter[str] = Counter()
        self._located: Located | None = None
        self._seen_global = False
        self._seen_global_quota = False
        self._records_seen = 0
        self._conn_ids: set[int] = set()
        self._transactions: set[tuple[int, int]] = set()
        self._tx_nodes: set[tuple[int, int, str]] = set()
        self._known_domains: set[int] = set()
        self._ring_domains: set[int] = set()
        self._domain_records: set[int] = set()
        self._dom0_ring_seen = False
        self._v2_in_v1 = 0
        self._tree_started = False
        self._node_hashes: set[int] = set()
        self._check_header()

    # -- public ----------------------------------------------------------------------------
    def check(self, located: Located) -> None:
        self._located = located
        record = located.record
        first = self._records_seen == 0
        if first and self.profile.is_c_loader and not isinstance(record, GlobalData):
            self._profile_error("C xenstored needs GLOBAL_DATA as the first record")
        self._records_seen += 1
        if record.type not in self.profile.record_types and not isinstance(record, End):
            self._not_loaded(record)
        match record:
            case NodeData():
                self._node(record)
            case ConnectionData():
                self._connection(record)
            case WatchData() | WatchDataExtended() | UnwrittenDepthWatch():
                self._watch(record)
            case TransactionData():
                self._transaction(record)
            case GlobalData():
                self._global(record)
            case GlobalQuotaData():
                if self._seen_global_quota:
                    self._error("a second GLOBAL_QUOTA_DATA record")
                self._seen_global_quota = True
                if self.header.version < STREAM_V2 and self.profile.loads_v2_records_in_v1:
                    self._v2_in_v1 += 1
            case DomainData():
                self._domain(record)
            case UnknownRecord():
                pass
            case End():
                self._finish()

    # -- per type -----------------------------------------------------------------------------
    def _check_header(self) -> None:
        h = self.header
        if h.version not in self.profile.versions:
            versions = "/".join(str(v) for v in sorted(self.profile.versions))
            raise ProfileError(
                f"{self.profile.name} loads stream version {versions} only, this is version "
                f"{h.version}",
                offset=8,
            )
        if h.big_endian and self.profile.little_endian_only:
            raise ProfileError(
                f"{self.profile.name} loads little-endian streams only (flags 0)", offset=12
            )

    def _global(self, record: GlobalData) -> None:
        if self._seen_global:
            self._error("a second GLOBAL_DATA record")
        if self._conn_ids:
            self._error("GLOBAL_DATA after a CONNECTION_DATA record")
        self._seen_global = True
        if self.profile.is_c_loader and record.evtchn_fd < 0:
            self._profile_error(
                f"evtchn-fd {record.evtchn_fd}: C xenstored needs an open event-channel fd"
            )
        if self.profile.needs_listening_socket and record.rw_socket_fd < 0:
            self._profile_error(
                f"rw-socket-fd {record.rw_socket_fd}: the loader needs its listening socket "
                "(with -1 it restores, but no client can connect)"
            )

    def _connection(self, record: ConnectionData) -> None:
        if record.conn_id == 0:
            self._error("conn-id 0 is reserved for committed nodes")
        if record.conn_id in self._conn_ids:
            self._error(f"duplicate conn-id {record.conn_id}")
        self._conn_ids.add(record.conn_id)
        if isinstance(record.spec, RingSpec):
            self._ring_domains.add(record.spec.domid)
            self._known_domains.add(record.spec.domid)
            if record.spec.tdomid != DOMID_INVALID:
                self._known_domains.add(record.spec.tdomid)
            if record.spec.domid == 0:
                self._dom0_ring_seen = True

    def _need_conn(self, conn_id: int, what: str) -> None:
        if conn_id not in self._conn_ids:
            self._error(f"{what} for unknown conn-id {conn_id}")

    def _watch(self, record: WatchData | WatchDataExtended | UnwrittenDepthWatch) -> None:
        self._need_conn(record.conn_id, "watch")
        if not record.path:
            self._error("watch with an empty path")
        if self.profile.dom0_ring_before_watches and not self._dom0_ring_seen:
            self._profile_error(
                "WATCH record before dom0's ring CONNECTION_DATA (the loader crashes)"
            )
        if isinstance(record, UnwrittenDepthWatch):
            self._defect(
                ProfileError if self.profile.is_c_loader else SemanticError, watchext.defect(record)
            )
            return
        if isinstance(record, WatchDataExtended) and self.header.version < STREAM_V2:
            if self.profile.loads_v2_records_in_v1:
                self._v2_in_v1 += 1
            else:
                self._error("WATCH_DATA_EXTENDED in a version 1 stream")

    def _transaction(self, record: TransactionData) -> None:
        self._need_conn(record.conn_id, "transaction")
        key = (record.conn_id, record.tx_id)
        if key in self._transactions:
            self._error(f"duplicate transaction {record.tx_id} on conn-id {record.conn_id}")
        self._transactions.add(key)

    def _node(self, record: NodeData) -> None:
        if self.profile.is_c_loader and not self._dom0_ring_seen:
            self._profile_error(
                "NODE_DATA before dom0's ring CONNECTION_DATA (C sets up its node database "
                "when it re-introduces dom0)"
            )
        if record.conn_id:
            if not self.profile.keeps_transactions:
                self._not_loaded(record)  # C ignores conn-id/tx-id: it would commit the node
            self._transaction_node(record)
            return
        path = record.path
        if not record.perms:
            self._error(f"committed node {path!r} without permissions")
        owner = record.perms[0].domid
        self._known_domains.add(owner)
        if self.profile.is_c_loader and owner not in self._ring_domains:
            # Seen on 4.17 and 4.20: their restore allocates the owner's accounting only for
            # a domain it has re-introduced, and dies on any other (its own dumps included).
            self._profile_error(
                f"node {path!r} is owned by domain {owner}, which has no ring "
                "CONNECTION_DATA before it: xenstored -U exits (write node error restoring "
                "node)"
            )
        if path.startswith("@"):
            self._add_path(path)
            return
        if not path.startswith(ROOT) or (path != ROOT and path.endswith("/")) or "//" in path:
            self._error(f"invalid node path {path!r}")
        if self.migration:
            self._migration_node(path)
        elif not self._tree_started:
            self._tree_started = True
            if path != ROOT:
                self._error(f"first tree node is {path!r}, '/' must come first")
            self._ancestors = [ROOT]
        elif self.preorder:
            self._preorder_node(path)
            return
        elif hash(parent_path(path)) not in self._node_hashes:
            self._error(f"node {path!r} before its parent {parent_path(path)!r}")
        self._add_path(path)

    def _preorder_node(self, path: str) -> None:
        parent = parent_path(path)
        ancestors = self._ancestors
        while ancestors and ancestors[-1] != parent:
            ancestors.pop()
        if not ancestors:
            self._error(f"node {path!r} is not in pre-order below its parent {parent!r}")
        ancestors.append(path)

    def _migration_node(self, path: str) -> None:
        if hash(path) in self._assumed_parents:
            self._error(f"node {path!r} after a child that needed it as its parent")
        if path != ROOT and hash(parent_path(path)) not in self._node_hashes:
            self._assumed_parents.add(hash(parent_path(path)))

    def _add_path(self, path: str) -> None:
        key = hash(path)
        if key in self._node_hashes:
            self._error(f"duplicate committed node {path!r}")
        self._node_hashes.add(key)

    def _transaction_node(self, record: NodeData) -> None:
        self._need_conn(record.conn_id, "transaction node")
        if (record.conn_id, record.tx_id) not in self._transactions:
            self._error(
                f"node {record.path!r} of transaction {record.tx_id} on conn-id "
                f"{record.conn_id} before its TRANSACTION_DATA"
            )
        key = (record.conn_id, record.tx_id, record.path)
        if key in self._tx_nodes:
            self._error(f"duplicate node {record.path!r} in transaction {record.tx_id}")
        self._tx_nodes.add(key)
        if record.access == NodeAccess.DELETED:
            if record.value or record.perms:
                self._error(f"deleted transaction node {record.path!r} with value or perms")
        elif not record.perms:
            self._error(f"transaction node {record.path!r} without permissions")

    def _domain(self, record: DomainData) -> None:
        # A partial stream's domain may be known to the loader already (from its pre-copy).
        if record.domid not in self._known_domains and not self.migration:
            self._defect(
                SemanticError,
                f"DOMAIN_DATA for domain {record.domid}, not known from earlier records (no "
                "ring connection, target or node owner: a C loader aborts with 'referenced "
                "domain not found')",
            )
        if record.domid in self._domain_records:
            self._error(f"a second DOMAIN_DATA for domain {record.domid}")
        self._domain_records.add(record.domid)
        wanted = self.profile.dom0_features
        if (
            record.domid == 0
            and self.header.version >= STREAM_V2
            and record.features & wanted != wanted
        ):
            lost = " (WATCHDEPTH among them)" if ~record.features & FEATURE_WATCHDEPTH else ""
            self._profile_error(
                f"dom0's DOMAIN_DATA has features 0x{record.features:x}: the loader applies "
                f"them as given, so dom0 would lose 0x{wanted & ~record.features:x}{lost}"
            )
        if self.header.version < STREAM_V2 and self.profile.loads_v2_records_in_v1:
            self._v2_in_v1 += 1

    def _not_loaded(self, record: Record) -> None:
        """The profile's loader skips this record type: say what would be lost."""
        if isinstance(record, NodeData) and record.conn_id:
            self._profile_error(
                f"{self.profile.name} would apply transaction node {record.path!r} as a "
                "committed node"
            )
        if isinstance(record, WatchDataExtended):
            self._profile_error(
                f"{self.profile.name} skips WATCH_DATA_EXTENDED: watch {record.path!r} "
                "would be lost"
            )
        self._dropped[type_name(record.type)] += 1

    def _finish(self) -> None:
        if self.profile.is_c_loader and not self._seen_global:
            self._profile_error("no GLOBAL_DATA record")
        if self._v2_in_v1:
            self.warnings.append(
                f"version-1 stream with {self._v2_in_v1} record(s) of types 6-8 "
                f"({self.profile.name} loads them; the format reserves them for version 2)"
            )
        for name, count in sorted(self._dropped.items()):
            if name == "TRANSACTION_DATA":
                what = f"{count} open transaction{'s' if count != 1 else ''}"
            else:
                what = f"{count} {name} record{'s' if count != 1 else ''}"
            self.warnings.append(f"{what} will be dropped by {self.profile.name}")
        if self._assumed_parents:
            count = len(self._assumed_parents)
            self.warnings.append(
                f"migration stream: {count} parent node{'s' if count != 1 else ''} must "
                "already exist in the loader"
            )
        if self.profile.is_c_loader and not self._tree_started and not self.migration:
            self.warnings.append("no '/' node: the loader keeps only its own empty root")

    # -- errors -------------------------------------------------------------------------------
    def _where(self) -> dict[str, int | None]:
        loc = self._located
        if loc is None:
            return {}
        return {"record_index": loc.index, "offset": loc.offset, "record_type": loc.record.type}

    def _error(self, reason: str) -> None:
        raise SemanticError(reason, **self._where())

    def _defect(self, kind: type[ImageError], reason: str) -> None:
        if kind is ProfileError:
            reason = f"{self.profile.name}: {reason}"
        error = kind(reason, **self._where())
        if not self.collect_defects:
            raise error
        self.defects.append(error)

    def _profile_error(self, reason: str) -> None:
        raise ProfileError(f"{self.profile.name}: {reason}", **self._where())


def validate_records(
    located: Iterable[Located],
    header: Header,
    profile: str | Profile = "spec",
    *,
    migration: bool = False,
) -> list[str]:
    """Validate already-decoded records; returns the warnings, raises ImageError."""
    validator = StreamValidator(header, as_profile(profile), migration=migration)
    for item in located:
        validator.check(item)
    return validator.warnings


__all__ = [
    "ImageError",
    "StreamValidator",
    "parent_path",
    "validate_records",
]
