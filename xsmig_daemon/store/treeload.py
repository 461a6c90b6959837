"""Committed nodes into an empty tree, in bulk: the standby successor's pre-copy loop.

A live update pre-copies the whole tree (store/precopy.py), so at 1,000,000 nodes this loop
runs a million times while the old daemon waits for ``LOADED``. ``TreeLoader`` does what
``image_state.restore_node`` plus the stream validator would do for such a stream, in one
pass with local state: each record must be a committed node with permissions and a valid
path, new to the tree, whose parent is already loaded (so the tree is rebuilt in the order
the records came, children in their parents' order); the per-owner counts, memory and the
generation counter are added up at ``finish``. Anything else (a transaction node, another
record type, a duplicate, an orphan) is a ``SemanticError`` naming the record and its byte
offset.

Pure: records in, tree out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NoReturn

from ..image.decoder import Located
from ..image.errors import SemanticError
from ..image.records import End, NodeData, RecordType
from .tree import NODE_HEADER_SIZE, Node, Tree

_NODE_TYPE = int(RecordType.NODE_DATA)


class TreeLoader:
    """Load committed nodes into ``tree`` (emptied first) until a record that is not one."""

    def __init__(self, tree: Tree) -> None:
        if tree.journal is not None or tree.snapshot is not None:
            raise ValueError("a tree being tracked or read cannot be bulk-loaded")
        tree.clear()
        self.tree = tree
        self.loaded = 0
        #: Per owner: nodes, and memory as C accounts it (node size + path).
        self._owned: dict[int, int] = {}
        self._memory: dict[int, int] = {}

    def feed(self, items: Iterable[Located]) -> End | None:
        """Load every record of ``items``; the END record once it came, else None."""
        nodes = self.tree.nodes
        owned, memory = self._owned, self._memory
        generation = self.tree.generation
        loaded = self.loaded
        try:
            for item in items:
                record = item.record
                if type(record) is not NodeData or record.conn_id:
                    if type(record) is End:
                        return record
                    self._refuse(item, "the pre-copy holds committed nodes only", node=False)
                path = record.path
                perms = record.perms
                if not perms or path in nodes:
                    self._refuse(item, "without permissions" if not perms else "a second time")
                cut = path.rfind("/")
                name = path[cut + 1 :]
                if path[:1] != "/" or "//" in path or (not name and path != "/"):
                    self._refuse(item, "is not a valid node path")
                above = nodes.get(path[:cut] or "/") if name else None
                if above is None and name:
                    self._refuse(item, "comes before its parent")
                value = record.value
                generation += 1
                nodes[path] = Node(value, perms, [], generation, 0)
                owner = perms[0].domid
                owned[owner] = owned.get(owner, 0) + 1
                size = NODE_HEADER_SIZE + 4 * len(perms) + len(value) + len(path)
                memory[owner] = memory.get(owner, 0) + size
                if above is not None:
                    above.children.append(name)
                    above.childlen += len(name) + 1
                    up = above.perms[0].domid
                    memory[up] = memory.get(up, 0) + len(name) + 1
                loaded += 1
        finally:
            self.tree.generation = generation
            self.loaded = loaded
        return None

    def finish(self) -> Tree:
        """The loaded tree, its accounting brought up to date."""
        tree = self.tree
        tree.owned.update(Counter(self._owned))
        tree.owned_memory.update(Counter(self._memory))
        self._owned, self._memory = {}, {}
        return tree

    @staticmethod
    def _refuse(item: Located, why: str, *, node: bool = True) -> NoReturn:
        record = item.record
        reason = f"node {record.path!r} {why}" if node and isinstance(record, NodeData) else why
        record_type = _NODE_TYPE if isinstance(record, NodeData) else int(record.type)
        raise SemanticError(
            reason, record_index=item.index, offset=item.offset, record_type=record_type
        )
