"""A transaction: its isolated view and C's generation-count conflict rule.

Every node the transaction touches is recorded once with the global generation it had at
first touch (None if it did not exist) and a copy of the node as the transaction sees it.
Commit succeeds only if every recorded generation still matches the committed tree, so an
unrelated concurrent change never conflicts and any change to a touched node does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..image.records import NodeAccess
from .perms import PermList
from .tree import Node, Tree


@dataclass(slots=True)
class TxNode:
    node: Node | None
    generation: int | None
    access: NodeAccess = NodeAccess.DELETED


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A watch event to fire at commit: path, exact-match flag, perms at the time."""

    path: str
    exact: bool
    perms: PermList | None
    old_perms: PermList | None = None


@dataclass(slots=True)
class Transaction:
    tx_id: int
    touched: dict[str, TxNode] = field(default_factory=dict)
    events: list[QueuedEvent] = field(default_factory=list)
    #: Set when the transaction hit an error that forbids a commit (C answers ENOMEM).
    failed: bool = False

    def entry(self, tree: Tree, path: str) -> TxNode:
        found = self.touched.get(path)
        if found is None:
            committed = tree.get(path)
            found = TxNode(
                committed.copy() if committed is not None else None,
                committed.generation if committed is not None else None,
            )
            self.touched[path] = found
        return found

    def conflicts(self, tree: Tree) -> bool:
        for path, entry in self.touched.items():
            committed = tree.get(path)
            current = committed.generation if committed is not None else None
            if current != entry.generation:
                return True
        return False

    def apply(self, tree: Tree) -> None:
        for path, entry in self.touched.items():
            if not entry.access & NodeAccess.WRITTEN:
                continue
            if entry.node is None:
                tree.remove(path)
            else:
                tree.put(path, entry.node.copy())
