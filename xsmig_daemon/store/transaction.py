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
    """A node as the transaction sees it, with what commit needs to know about it.

    ``first_perms`` are the committed permissions when the transaction first touched the
    node (None if it did not exist): watchers that could read it then still get its event.
    ``fire``/``fire_exact`` say whether commit fires watches for it; as in C there is one
    event per node, and a subtree event wins over an exact one.
    """

    node: Node | None
    generation: int | None
    access: NodeAccess = NodeAccess.DELETED
    first_perms: PermList | None = None
    fire: bool = False
    fire_exact: bool = True


@dataclass(slots=True)
class Transaction:
    tx_id: int
    #: Every node touched, in the order of first touch (the order commit fires in).
    touched: dict[str, TxNode] = field(default_factory=dict)
    #: Set when the transaction hit an error that forbids a commit (C answers ENOMEM).
    failed: bool = False
    #: Change of each domain's node count, in the order C first records it (its
    #: changed_domains list); checked against the committed counts before the conflicts.
    owner_delta: dict[int, int] = field(default_factory=dict)
    #: A node was created (C checks the node quota of the committer at the end then).
    node_created: bool = False

    def count_owner(self, domid: int, change: int) -> None:
        self.owner_delta[domid] = self.owner_delta.get(domid, 0) + change

    def queue_event(self, path: str, *, exact: bool) -> None:
        entry = self.touched[path]
        if not entry.fire:
            entry.fire, entry.fire_exact = True, exact
        elif not exact:
            entry.fire_exact = False

    def entry(self, tree: Tree, path: str) -> TxNode:
        found = self.touched.get(path)
        if found is None:
            committed = tree.special_node(path) if path.startswith("@") else tree.get(path)
            found = TxNode(
                committed.copy() if committed is not None else None,
                committed.generation if committed is not None else None,
                first_perms=committed.perms if committed is not None else None,
            )
            self.touched[path] = found
        return found

    def conflicts(self, tree: Tree) -> bool:
        return any(
            committed_generation(tree, path) != entry.generation
            for path, entry in self.touched.items()
        )

    def apply(self, tree: Tree) -> None:
        for path, entry in self.touched.items():
            if not entry.access & NodeAccess.WRITTEN:
                continue
            if path.startswith("@") and entry.node is not None:
                tree.set_special_perms(path, entry.node.perms)
            elif entry.node is None:
                tree.remove(path)
            else:
                tree.put(path, entry.node.copy())


def committed_generation(tree: Tree, path: str) -> int | None:
    """The generation a commit compares with (None: the node does not exist)."""
    committed = tree.special_node(path) if path.startswith("@") else tree.get(path)
    return committed.generation if committed is not None else None
