"""Pre-copy: send the tree while the daemon serves, then only what changed meanwhile.

The running side switches on the tree's journal (``start``), sends ``tree_records`` lazily
(it keeps serving between records), and at the freeze builds the ``FrozenDelta``: every
path stored or removed since ``start`` (removed ones by name, present ones as records), the
child list of every parent of such a path, and the complete non-tree state (globals,
connections with their pending bytes, watches and transactions, special nodes, domains and
quotas), which is small. The successor restores the pre-copied tree, then ``apply``\\ s
the delta onto it, so it holds exactly the state at the freeze: children included, in the
running side's order.

Pure: no I/O, no clock. The walk reads the live tree; nodes it visits after a change are
sent as they are then, and are resent in the delta anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from ..image.encoder import RecordEncoder
from ..image.records import End, Header, NodeData, Record
from ..wire.paths import parent
from .connection import Connection
from .engine import Engine
from .image_state import head_records, restore_engine, restore_node, tail_records
from .tree import Tree


def start(tree: Tree) -> None:
    """Record every change from now on."""
    tree.journal = set()


def tree_image(tree: Tree, header: Header, piece: int) -> Iterator[bytes]:
    """The committed tree as an image (preamble, nodes in pre-order, END) in pieces of about
    ``piece`` bytes. Lazy: between pieces the caller may change the tree (each node is
    encoded as it is when the walk reaches it; the journal has whatever changed)."""
    encoder = RecordEncoder(header)
    node_record = encoder.committed_node
    parts = [encoder.preamble()]
    size = len(parts[0])
    for path, node in tree.walk():
        record = node_record(path, node.value, node.perms)
        parts.append(record)
        size += len(record)
        if size >= piece:
            yield b"".join(parts)
            parts.clear()
            size = 0
    parts.append(encoder.encode(End()))
    yield b"".join(parts)


def stop(tree: Tree) -> set[str]:
    """Stop recording; the paths changed since ``start``."""
    journal, tree.journal = tree.journal, None
    return journal if journal is not None else set()


@dataclass(slots=True)
class FrozenDelta:
    """What the successor needs beyond the pre-copied tree."""

    #: Paths the pre-copy may hold that no longer exist.
    removed: list[str] = field(default_factory=list)
    #: The child list of every node whose children may have changed.
    children: dict[str, list[str]] = field(default_factory=dict)
    #: The records of the frozen state: globals, connections ..., changed nodes, domains.
    records: list[Record] = field(default_factory=list)

    def document(self) -> dict[str, object]:
        return {"removed": self.removed, "children": self.children}


def frozen_delta(
    engine: Engine, changed: Collection[str], *, skip: Collection[Connection] = ()
) -> FrozenDelta:
    """The delta for ``changed`` paths; the engine must not change until it is sent."""
    tree = engine.tree
    delta = FrozenDelta()
    records: list[Record] = list(head_records(engine, skip=skip))
    parents: set[str] = set()
    # Sorted: a parent sorts before its children, so the successor can link each new node.
    for path in sorted(changed):
        node = tree.get(path)
        if node is None:
            delta.removed.append(path)
        else:
            records.append(NodeData(path, node.value, node.perms))
        if path != "/":
            parents.add(parent(path))
    for path in sorted(parents):
        node = tree.get(path)
        if node is not None:
            delta.children[path] = list(node.children)
    records.extend(tail_records(engine))
    delta.records = records
    return delta


def apply(
    tree: Tree, removed: list[str], children: dict[str, list[str]], records: list[Record]
) -> Engine:
    """The engine at the freeze: ``tree`` (the pre-copy) with the delta applied."""
    for path in removed:
        tree.remove(path)
    rest: list[Record] = []
    for record in _nodes_first(records, rest):
        restore_node(tree, record)
    for path, names in children.items():
        if tree.get(path) is None:
            raise ValueError(f"delta: child list for {path}, which is not in the tree")
        tree.replace_children(path, list(names))
    return restore_engine(rest, tree)


def _nodes_first(records: list[Record], rest: list[Record]) -> Iterator[NodeData]:
    for record in records:
        if isinstance(record, NodeData) and record.committed and not record.path.startswith("@"):
            yield record
        else:
            rest.append(record)
