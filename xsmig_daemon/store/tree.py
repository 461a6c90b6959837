"""The committed node tree with C's generation counter and per-owner node counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..image.records import DOMID_ANY, Permission
from ..wire.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, SPECIAL_PATHS, join
from .perms import PermList

ROOT_PERMS: PermList = (Permission("n", 0),)
#: sizeof(struct node_hdr) in current Xen: generation, perm count, data and child lengths.
NODE_HEADER_SIZE = 16


@dataclass(slots=True)
class Node:
    """One node. ``children`` keeps creation order (DIRECTORY and the image use it).

    Change ``children`` only through ``add_child``/``remove_child``/``set_children``: they
    keep ``childlen`` (bytes of the NUL-separated child list) right, so that sizes are O(1).
    """

    value: bytes
    perms: PermList
    children: list[str] = field(default_factory=list)
    generation: int = 0
    childlen: int = -1

    def __post_init__(self) -> None:
        if self.childlen < 0:
            self.childlen = sum(len(c) + 1 for c in self.children)

    def copy(self) -> Node:
        return Node(self.value, self.perms, list(self.children), self.generation, self.childlen)

    def add_child(self, name: str) -> None:
        self.children.append(name)
        self.childlen += len(name) + 1

    def remove_child(self, name: str) -> None:
        if name in self.children:
            self.children.remove(name)
            self.childlen -= len(name) + 1

    def set_children(self, names: list[str]) -> None:
        self.children = names
        self.childlen = sum(len(c) + 1 for c in names)

    @property
    def owner(self) -> int:
        return self.perms[0].domid

    def size(self) -> int:
        """Bytes charged against node-size: C's 16-byte header, perms, value, child names."""
        return NODE_HEADER_SIZE + 4 * len(self.perms) + len(self.value) + self.childlen


def default_special_perms() -> dict[str, PermList]:
    # Current Xen lets every domain read @releaseDomain (it filters events per domain).
    return {
        INTRODUCE_DOMAIN: (Permission("n", 0),),
        RELEASE_DOMAIN: (Permission("n", 0), Permission("r", DOMID_ANY)),
    }


class Tree:
    """Committed nodes by absolute path. Every change bumps the global generation."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.generation = 0
        self.owned: Counter[int] = Counter()
        #: Bytes of node memory charged to each owner (node size + path), as C accounts it.
        self.owned_memory: Counter[int] = Counter()
        self.special_perms: dict[str, PermList] = default_special_perms()
        #: Paths stored or removed since a pre-copy began (store/precopy.py); None: untracked.
        self.journal: set[str] | None = None
        #: While a copy-on-write snapshot is read (store/snapshot.py): each node as it was
        #: when the snapshot began, saved before its first change (None: it did not exist).
        self.snapshot: dict[str, Node | None] | None = None
        #: Generation of each special node's permissions (a transaction's conflict check).
        self.special_generation: dict[str, int] = {}
        self.put("/", Node(b"", ROOT_PERMS, ["tool"]))
        self.put("/tool", Node(b"", ROOT_PERMS, ["xenstored"]))
        self.put("/tool/xenstored", Node(b"", ROOT_PERMS, []))

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def set_special_perms(self, path: str, perms: PermList) -> None:
        self.special_perms[path] = perms
        self.special_generation[path] = self.next_generation()

    def special_node(self, path: str) -> Node | None:
        """A special node as a transaction sees it: no value, no children, its perms."""
        perms = self.special_perms.get(path)
        if perms is None:
            return None
        return Node(b"", perms, generation=self.special_generation.get(path, 0))

    def next_generation(self) -> int:
        self.generation += 1
        return self.generation

    def put(self, path: str, node: Node) -> None:
        """Store ``node`` (the caller keeps parent child lists right) with a new generation."""
        old = self.nodes.get(path)
        if self.snapshot is not None and path not in self.snapshot:
            self.snapshot[path] = old
        if old is not None:
            self.owned[old.owner] -= 1
            self.owned_memory[old.owner] -= old.size() + len(path)
        node.generation = self.next_generation()
        self.nodes[path] = node
        if self.journal is not None:
            self.journal.add(path)
        self.owned[node.owner] += 1
        self.owned_memory[node.owner] += node.size() + len(path)

    def remove(self, path: str) -> None:
        if self.snapshot is not None and path not in self.snapshot:
            self.snapshot[path] = self.nodes.get(path)
        old = self.nodes.pop(path, None)
        if old is not None:
            self.owned[old.owner] -= 1
            self.owned_memory[old.owner] -= old.size() + len(path)
            self.next_generation()
            if self.journal is not None:
                self.journal.add(path)

    def changing(self, path: str) -> None:
        """A stored node is about to be changed in place (stale permissions): a snapshot
        keeps a copy of it as it was, a pre-copy resends it."""
        if self.snapshot is not None and path not in self.snapshot:
            node = self.nodes.get(path)
            self.snapshot[path] = node.copy() if node is not None else None
        if self.journal is not None:
            self.journal.add(path)

    def replace_children(self, path: str, names: list[str]) -> None:
        """Set a stored node's child list, keeping its owner's memory count right."""
        node = self.nodes[path]
        before = node.childlen
        node.set_children(names)
        self.owned_memory[node.owner] += node.childlen - before

    def clear(self) -> None:
        """Forget every node (a restore fills the tree from records)."""
        self.nodes.clear()
        self.owned.clear()
        self.owned_memory.clear()

    def link_child(self, parent_path: str, name: str) -> None:
        """Append ``name`` to a stored parent's children in place (restore only)."""
        above = self.nodes[parent_path]
        above.add_child(name)
        self.owned_memory[above.owner] += len(name) + 1

    def walk(self, path: str = "/") -> Iterator[tuple[str, Node]]:
        """Depth-first pre-order, children in child-list order."""
        stack = [path]
        while stack:
            current = stack.pop()
            node = self.nodes.get(current)
            if node is None:
                continue
            yield current, node
            if node.children:
                prefix = "/" if current == "/" else current + "/"
                stack.extend([prefix + child for child in reversed(node.children)])

    def check(self) -> list[str]:
        """Consistency problems (CONTROL check): every node reachable, counts right."""
        problems = []
        reachable = {path for path, _ in self.walk()}
        problems += [f"node {p} is not reachable from /" for p in self.nodes if p not in reachable]
        owned: Counter[int] = Counter()
        memory: Counter[int] = Counter()
        for path, node in self.nodes.items():
            owned[node.owner] += 1
            memory[node.owner] += node.size() + len(path)
            if node.childlen != sum(len(c) + 1 for c in node.children):
                problems.append(f"node {path}: child list length {node.childlen} is wrong")
            if len(set(node.children)) != len(node.children):
                problems.append(f"node {path}: duplicate child names")
            problems += [
                f"node {path}: child {c} missing"
                for c in node.children
                if join(path, c) not in self.nodes
            ]
        if +owned != +self.owned:
            problems.append(f"owner node counts {dict(+self.owned)} != {dict(+owned)}")
        if +memory != +self.owned_memory:
            problems.append(f"owner memory {dict(+self.owned_memory)} != {dict(+memory)}")
        return problems

    def is_special(self, path: str) -> bool:
        return path in SPECIAL_PATHS
