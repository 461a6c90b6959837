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

import re

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
        self.left = LeftBehind(domid)

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
                if node_relates_to(record, self.domid):
                    return True
                self.left.consider(record)
                return False
            case DomainData():
                return record.domid == self.domid
        return False


_BACKEND = re.compile(r"/local/domain/\d+/backend/[^/]+/(\d+)$")


class LeftBehind:
    """Nodes relating to domain N that a migration stream does not carry: the toolstack's.

    Backend directories of N under other domains (``/local/domain/K/backend/TYPE/N``) and any
    other node, not kept, whose permission list grants N access; only the top of each such
    subtree is listed. Fed every node that was *not* kept, in pre-order.
    """

    def __init__(self, domid: int) -> None:
        self.domid = domid
        self.paths: list[str] = []

    def consider(self, node: NodeData) -> None:
        path = node.path
        if self.paths and (path.startswith(self.paths[-1] + "/")):
            return
        backend = _BACKEND.match(path)
        grants = any(perm.domid == self.domid for perm in node.perms[1:])
        if grants or (backend is not None and int(backend.group(1)) == self.domid):
            self.paths.append(path)
