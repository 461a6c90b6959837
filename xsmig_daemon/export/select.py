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

from ..image.records import NodeData
from ..wire.paths import domain_home


def node_relates_to(node: NodeData, domid: int) -> bool:
    home = domain_home(domid)
    path = node.path
    if path == home or path.startswith(home + "/"):
        return True
    if path.startswith("@"):
        return any(perm.domid == domid for perm in node.perms)
    return bool(node.perms) and node.perms[0].domid == domid
