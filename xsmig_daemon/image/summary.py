"""Streaming statistics of an image, for ``xsmig inspect``.

``ImageSummary.add()`` takes one decoded record at a time and keeps only aggregates: counts,
one row per connection, DOMAIN_DATA and quota records, and tree statistics. Memory grows with
the number of connections and domains, never with the number of nodes.

``record_fields()`` gives the key fields of one record as plain JSON-able values; it backs
both ``inspect --records`` and its JSON Lines form.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .decoder import Located
from .encoder import HEADER_SIZE, RECORD_HEADER_SIZE
from .errors import type_name
from .records import (
    DOMID_INVALID,
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
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

INSPECT_SCHEMA = "xsmig.inspect/1"
RECORD_SCHEMA = "xsmig.record/1"
END_SIZE = RECORD_HEADER_SIZE
#: Owners listed by name in the text summary.
OWNERS_SHOWN = 10

JSON = dict[str, Any]


def format_perms(perms: tuple[Permission, ...]) -> str:
    """``b0,r1,w2``; a stale entry is followed by ``!`` (``r5!``)."""
    return ",".join(f"{p.access}{p.domid}{'!' if p.stale else ''}" for p in perms)


def quota_dict(quotas: tuple[Quota, ...]) -> dict[str, int]:
    return dict(quotas)


def node_depth(path: str) -> int:
    """``/`` is depth 0, ``/local`` 1, ``/local/domain`` 2; special nodes are depth 0."""
    if path == "/" or not path.startswith("/"):
        return 0
    return path.count("/")


@dataclass(slots=True)
class ConnectionRow:
    conn_id: int
    kind: str
    domid: int | None
    tdomid: int | None
    evtchn: int | None
    fd: int | None
    unique_id: int | None
    pending_in_bytes: int
    pending_out_bytes: int
    out_resp_len: int
    watches: int = 0
    transactions: int = 0
    transaction_nodes: int = 0

    @classmethod
    def from_record(cls, record: ConnectionData) -> ConnectionRow:
        spec = record.spec
        ring = isinstance(spec, RingSpec)
        return cls(
            conn_id=record.conn_id,
            kind="ring" if ring else "socket",
            domid=spec.domid if isinstance(spec, RingSpec) else None,
            tdomid=(
                spec.tdomid if isinstance(spec, RingSpec) and spec.tdomid != DOMID_INVALID else None
            ),
            evtchn=spec.evtchn if isinstance(spec, RingSpec) else None,
            fd=None if isinstance(spec, RingSpec) else spec.fd,
            unique_id=record.unique_id,
            pending_in_bytes=len(record.in_data),
            pending_out_bytes=len(record.out_data),
            out_resp_len=record.out_resp_len,
        )

    def to_json(self) -> JSON:
        return {
            "conn_id": self.conn_id,
            "conn_type": self.kind,
            "domid": self.domid,
            "tdomid": self.tdomid,
            "evtchn": self.evtchn,
            "fd": self.fd,
            "unique_id": self.unique_id,
            "pending_in_bytes": self.pending_in_bytes,
            "pending_out_bytes": self.pending_out_bytes,
            "out_resp_len": self.out_resp_len,
            "watches": self.watches,
            "transactions": self.transactions,
            "transaction_nodes": self.transaction_nodes,
        }


@dataclass(slots=True)
class TreeStats:
    nodes: int = 0
    special_nodes: int = 0
    max_depth: int = 0
    deepest_path: str | None = None
    path_bytes: int = 0
    value_bytes: int = 0
    largest_value: int = 0
    stale_permissions: int = 0
    nodes_per_owner: Counter[int] = field(default_factory=Counter)

    def add(self, node: NodeData) -> None:
        path = node.path
        if path.startswith("@"):
            self.special_nodes += 1
        else:
            self.nodes += 1
            depth = node_depth(path)
            if depth > self.max_depth or self.deepest_path is None:
                self.max_depth = depth
                self.deepest_path = path
        self.path_bytes += len(path)
        size = len(node.value)
        self.value_bytes += size
        self.largest_value = max(self.largest_value, size)
        for perm in node.perms:
            if perm.stale:
                self.stale_permissions += 1
        if node.perms:
            self.nodes_per_owner[node.perms[0].domid] += 1

    def to_json(self) -> JSON:
        return {
            "nodes": self.nodes,
            "special_nodes": self.special_nodes,
            "max_depth": self.max_depth,
            "deepest_path": self.deepest_path,
            "path_bytes": self.path_bytes,
            "value_bytes": self.value_bytes,
            "largest_value_bytes": self.largest_value,
            "stale_permissions": self.stale_permissions,
            "nodes_per_owner": {str(d): n for d, n in sorted(self.nodes_per_owner.items())},
        }


class ImageSummary:
    """Aggregates of one image, fed record by record."""

    def __init__(self, header: Header) -> None:
        self.header = header
        self.size_bytes = HEADER_SIZE
        self.record_count = 0
        self.count_by_type: Counter[int] = Counter()
        self.bytes_by_type: Counter[int] = Counter()
        self.global_data: GlobalData | None = None
        self.global_quotas: GlobalQuotaData | None = None
        self.connections: dict[int, ConnectionRow] = {}
        self.domains: list[DomainData] = []
        self.tree = TreeStats()
        self.orphan_references = 0
        self._last: Located | None = None

    def add(self, located: Located) -> None:
        record = located.record
        last = self._last
        if last is not None:
            self.bytes_by_type[last.record.type] += located.offset - last.offset
        self._last = located
        self.record_count += 1
        self.count_by_type[record.type] += 1
        self.size_bytes = located.offset
        match record:
            case NodeData():
                if record.conn_id:
                    self._row(record.conn_id, "transaction_nodes")
                else:
                    self.tree.add(record)
            case ConnectionData():
                self.connections[record.conn_id] = ConnectionRow.from_record(record)
            case WatchData() | WatchDataExtended() | UnwrittenDepthWatch():
                self._row(record.conn_id, "watches")
            case TransactionData():
                self._row(record.conn_id, "transactions")
            case GlobalData():
                self.global_data = record
            case GlobalQuotaData():
                self.global_quotas = record
            case DomainData():
                self.domains.append(record)
            case End():
                self.bytes_by_type[record.type] += END_SIZE
                self.size_bytes = located.offset + END_SIZE
            case UnknownRecord():
                pass

    def _row(self, conn_id: int, counter: str) -> None:
        row = self.connections.get(conn_id)
        if row is None:
            self.orphan_references += 1
            return
        setattr(row, counter, getattr(row, counter) + 1)

    def to_json(self) -> JSON:
        return {
            "schema": INSPECT_SCHEMA,
            "header": {
                "version": self.header.version,
                "byte_order": "big" if self.header.big_endian else "little",
            },
            "size_bytes": self.size_bytes,
            "records": {
                "total": self.record_count,
                "by_type": {
                    type_name(t): {"count": n, "bytes": self.bytes_by_type[t]}
                    for t, n in sorted(self.count_by_type.items())
                },
            },
            "global": (
                None
                if self.global_data is None
                else {
                    "rw_socket_fd": self.global_data.rw_socket_fd,
                    "evtchn_fd": self.global_data.evtchn_fd,
                }
            ),
            "quotas": (
                None
                if self.global_quotas is None
                else {
                    "domain": quota_dict(self.global_quotas.domain_quotas),
                    "global": quota_dict(self.global_quotas.global_quotas),
                }
            ),
            "connections": [row.to_json() for row in self.connections.values()],
            "domains": [
                {"domid": d.domid, "features": d.features, "quotas": quota_dict(d.quotas)}
                for d in self.domains
            ],
            "tree": self.tree.to_json(),
            "references_to_unknown_connections": self.orphan_references,
        }

    def to_text(self) -> str:
        return "\n".join(_text_lines(self.to_json()))


def _text_lines(summary: JSON) -> list[str]:
    header = summary["header"]
    records = summary["records"]
    lines = [
        f"header: version {header['version']}, {header['byte_order']} endian, "
        f"{summary['size_bytes']} bytes",
        f"records: {records['total']}",
    ]
    for name, entry in records["by_type"].items():
        lines.append(f"  {name:<20} {entry['count']:>9}  {entry['bytes']:>11} bytes")
    glob = summary["global"]
    if glob is not None:
        lines.append(f"global: rw-socket-fd {glob['rw_socket_fd']}, evtchn-fd {glob['evtchn_fd']}")
    quotas = summary["quotas"]
    if quotas is not None:
        lines.append("global quotas (0 = unlimited):")
        for scope in ("domain", "global"):
            for name, value in quotas[scope].items():
                lines.append(f"  {scope:<6} {name:<20} {value}")
    conns = summary["connections"]
    lines.append(f"connections: {len(conns)}")
    if conns:
        lines.append(
            f"  {'id':>5} {'type':<6} {'dom':>5} {'tdom':>5} {'evtchn/fd':>9} "
            f"{'in':>7} {'out':>7} {'resp':>5} {'watch':>6} {'tx':>4} {'txnode':>6}"
        )
        for c in conns:
            port = c["evtchn"] if c["conn_type"] == "ring" else c["fd"]
            lines.append(
                f"  {c['conn_id']:>5} {c['conn_type']:<6} {_dash(c['domid']):>5} "
                f"{_dash(c['tdomid']):>5} {port:>9} {c['pending_in_bytes']:>7} "
                f"{c['pending_out_bytes']:>7} {c['out_resp_len']:>5} {c['watches']:>6} "
                f"{c['transactions']:>4} {c['transaction_nodes']:>6}"
                + ("" if c["unique_id"] is None else f"  unique-id 0x{c['unique_id']:x}")
            )
    domains = summary["domains"]
    lines.append(f"domains (DOMAIN_DATA): {len(domains)}")
    for d in domains:
        quota_text = ", ".join(f"{k}={v}" for k, v in d["quotas"].items()) or "no quotas"
        lines.append(f"  dom{d['domid']}: features 0x{d['features']:x}, {quota_text}")
    tree = summary["tree"]
    lines.append(
        f"tree: {tree['nodes']} nodes + {tree['special_nodes']} special, max depth "
        f"{tree['max_depth']} ({tree['deepest_path']}), paths {tree['path_bytes']} bytes, "
        f"values {tree['value_bytes']} bytes (largest {tree['largest_value_bytes']}), "
        f"{tree['stale_permissions']} stale permissions"
    )
    owners = tree["nodes_per_owner"]
    if owners:
        shown = list(owners.items())[:OWNERS_SHOWN]
        hidden = len(owners) - OWNERS_SHOWN
        more = f", ... ({hidden} more owners)" if hidden > 0 else ""
        lines.append("  nodes per owner: " + ", ".join(f"dom{d}={n}" for d, n in shown) + more)
    if summary["references_to_unknown_connections"]:
        lines.append(
            f"warning: {summary['references_to_unknown_connections']} records refer to "
            "unknown connections"
        )
    return lines


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _text_preview(raw: bytes, limit: int = 40) -> str:
    shown = repr(raw[:limit])[2:-1]
    return f"'{shown}'" + ("..." if len(raw) > limit else "")


def record_fields(record: Record) -> JSON:
    """The key fields of one record as JSON-able values (bytes as hex)."""
    match record:
        case NodeData():
            fields: JSON = {"path": record.path}
            if record.conn_id:
                fields.update(conn_id=record.conn_id, tx_id=record.tx_id, access=int(record.access))
            fields.update(perms=format_perms(record.perms), value_hex=record.value.hex())
            return fields
        case ConnectionData():
            row = ConnectionRow.from_record(record).to_json()
            del row["watches"], row["transactions"], row["transaction_nodes"]
            return row
        case WatchData():
            return {"conn_id": record.conn_id, "path": record.path, "token": record.token}
        case UnwrittenDepthWatch():
            return {
                "conn_id": record.conn_id,
                "path": record.path,
                "token": record.token,
                "depth": None,
                "layout": "xen-4.22-writer",
                "declared_len": record.declared_len,
                "written_len": record.written_len,
            }
        case WatchDataExtended():
            return {
                "conn_id": record.conn_id,
                "path": record.path,
                "token": record.token,
                "depth": record.depth,
            }
        case TransactionData():
            return {"conn_id": record.conn_id, "tx_id": record.tx_id}
        case GlobalData():
            return {"rw_socket_fd": record.rw_socket_fd, "evtchn_fd": record.evtchn_fd}
        case GlobalQuotaData():
            return {
                "domain_quotas": quota_dict(record.domain_quotas),
                "global_quotas": quota_dict(record.global_quotas),
            }
        case DomainData():
            return {
                "domid": record.domid,
                "features": record.features,
                "quotas": quota_dict(record.quotas),
            }
        case UnknownRecord():
            return {"body_hex": record.body.hex()}
        case End():
            return {}
    raise TypeError(f"not a record: {record!r}")


def record_json(located: Located) -> JSON:
    return {
        "schema": RECORD_SCHEMA,
        "index": located.index,
        "offset": located.offset,
        "type": type_name(located.record.type),
        **record_fields(located.record),
    }


def record_line(located: Located) -> str:
    """One human line: index, offset, type and the key fields."""
    record = located.record
    head = f"{located.index:>7} {located.offset:>#10x} {type_name(record.type):<19}"
    match record:
        case NodeData():
            where = (
                f" conn={record.conn_id} tx={record.tx_id} access={int(record.access)}"
                if record.conn_id
                else ""
            )
            return (
                f"{head} {record.path}{where} perms={format_perms(record.perms)} "
                f"value[{len(record.value)}]={_text_preview(record.value)}"
            )
        case ConnectionData():
            row = ConnectionRow.from_record(record)
            ident = (
                f"ring dom={row.domid} tdom={_dash(row.tdomid)} evtchn={row.evtchn}"
                if row.kind == "ring"
                else f"socket fd={row.fd}"
            )
            uid = "" if row.unique_id is None else f" unique-id=0x{row.unique_id:x}"
            return (
                f"{head} conn={row.conn_id} {ident} in={row.pending_in_bytes} "
                f"out={row.pending_out_bytes} resp={row.out_resp_len}{uid}"
            )
        case UnwrittenDepthWatch():
            return (
                f"{head} conn={record.conn_id} path={record.path!r} token={record.token!r} "
                f"depth=unwritten (Xen 4.22 writer layout, len {record.declared_len}, "
                f"{record.written_len} written)"
            )
        case WatchData() | WatchDataExtended():
            depth = f" depth={record.depth}" if isinstance(record, WatchDataExtended) else ""
            return (
                f"{head} conn={record.conn_id} path={record.path!r} token={record.token!r}{depth}"
            )
        case UnknownRecord():
            return f"{head} body[{len(record.body)}]"
        case End():
            return head.rstrip()
    fields = record_fields(record)
    return head + " " + " ".join(f"{k}={v}" for k, v in fields.items())
