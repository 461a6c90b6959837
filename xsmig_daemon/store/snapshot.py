"""Copy-on-write snapshot of the tree: an instant's state, read while the daemon serves.

``begin`` costs nothing per node: from then on the tree saves each node's pre-image before
its first change (tree.py). ``walk`` is the tree as it was at ``begin``, in pre-order: a
node changed since comes from its pre-image (and with it its child list of then), any other
from the live tree, which still holds it unchanged. ``end`` drops the pre-images. Memory:
one saved node per node changed while the snapshot is read. Pure: the caller reads the walk
lazily between requests it serves.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..image.records import NodeData
from ..wire.paths import join
from .tree import Node, Tree


def begin(tree: Tree) -> None:
    if tree.snapshot is not None:
        raise RuntimeError("a snapshot is already being read")
    tree.snapshot = {}


def end(tree: Tree) -> None:
    tree.snapshot = None


def walk(tree: Tree, path: str = "/") -> Iterator[tuple[str, Node]]:
    """The tree at ``begin``, depth-first pre-order, children in child-list order."""
    stack = [path]
    while stack:
        current = stack.pop()
        saved = tree.snapshot
        if saved is None:
            raise RuntimeError("the snapshot ended while it was read")
        node = saved[current] if current in saved else tree.nodes.get(current)
        if node is None:
            continue
        yield current, node
        stack.extend(join(current, child) for child in reversed(node.children))


def tree_records(tree: Tree) -> Iterator[NodeData]:
    for path, node in walk(tree):
        yield NodeData(path, node.value, node.perms)
