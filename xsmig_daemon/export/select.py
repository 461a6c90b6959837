"""Which records a ``--domain N`` migration stream keeps (image-format.md section 7).

The rule, for domain N:

* nodes: N's home ``/local/domain/N`` and everything below it; any other node whose owner
  (first permission entry) is N; a special node (``@introduceDomain``, ``@releaseDomain``)
  whose permission list names N. Parents outside that set are not included: a migration
  stream is loaded into a running daemon that already has ``/``, ``/local`` and
  ``/local/domain`` (sending them would overwrite the destination's own nodes);
* connections: N's ring only (with its watches, transactions and transaction nodes);
* DOMAIN_DATA: N's only; nothing daemon-wide (GLOBAL_DATA, GLOBAL_QUOTA_DATA, sockets).
"""

from __future__ import annotations

from ..image.records import (
    ConnectionData,
    DomainData,
    NodeData,
    Record,
    RingSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
)
from ..wire.paths import domain_home


def node_relates_to(node: NodeData, domid: int) -> bool:
    home = domain_home(domid)
    path = node.path
    if path == home or path.startswith(home + "/"):
        return True
    if path.startswith("@"):
        return any(perm.domid == domid for perm in node.perms)
    return bool(node.perms) and node.perms[0].domid == domid


class DomainFilter:
    """Keeps the records of a ``--domain N`` stream (the rule above) from a full stream."""

    def __init__(self, domid: int | None) -> None:
        assert domid is not None
        self.domid = domid
        self.conn_ids: set[int] = set()

    def __call__(self, record: Record) -> bool:
        match record:
            case ConnectionData():
                if isinstance(record.spec, RingSpec) and record.spec.domid == self.domid:
                    self.conn_ids.add(record.conn_id)
                    return True
                return False
            case WatchData() | WatchDataExtended() | TransactionData():
                return record.conn_id in self.conn_ids
            case NodeData():
                if record.conn_id:
                    return record.conn_id in self.conn_ids
                return node_relates_to(record, self.domid)
            case DomainData():
                return record.domid == self.domid
        return False
