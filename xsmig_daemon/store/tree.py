"""The committed node tree with C's generation counter and per-owner node counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from ..image.records import DOMID_ANY, Permission
from ..wire.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, SPECIAL_PATHS, join
from .perms import PermList

ROOT_PERMS: PermList = (Permission("n", 0),)
#: sizeof(struct node_hdr) in current Xen: generation, perm count, data and child lengths.
NODE_HEADER_SIZE = 16


@dataclass(slots=True)
class Node:
    """One node. ``children`` keeps creation order (DIRECTORY and the image use it)."""

    value: bytes
    perms: PermList
    children: list[str] = field(default_factory=list)
    generation: int = 0

    def copy(self) -> Node:
        return replace(self, children=list(self.children))

    @property
    def owner(self) -> int:
        return self.perms[0].domid

    def size(self) -> int:
        """Bytes charged against node-size: C's 16-byte header, perms, value, child names."""
        return (
            NODE_HEADER_SIZE
            + 4 * len(self.perms)
            + len(self.value)
            + sum(len(c) + 1 for c in self.children)
        )


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
        self.put("/", Node(b"", ROOT_PERMS, []))
        self.put("/tool", Node(b"", ROOT_PERMS, []))
        self.put("/tool/xenstored", Node(b"", ROOT_PERMS, []))
        self.nodes["/"].children = ["tool"]
        self.nodes["/tool"].children = ["xenstored"]

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def next_generation(self) -> int:
        self.generation += 1
        return self.generation

    def put(self, path: str, node: Node) -> None:
        """Store ``node`` (the caller keeps parent child lists right) with a new generation."""
        old = self.nodes.get(path)
        if old is not None:
            self.owned[old.owner] -= 1
            self.owned_memory[old.owner] -= old.size() + len(path)
        node.generation = self.next_generation()
        self.nodes[path] = node
        self.owned[node.owner] += 1
        self.owned_memory[node.owner] += node.size() + len(path)

    def remove(self, path: str) -> None:
        old = self.nodes.pop(path, None)
        if old is not None:
            self.owned[old.owner] -= 1
            self.owned_memory[old.owner] -= old.size() + len(path)
            self.next_generation()

    def walk(self, path: str = "/") -> Iterator[tuple[str, Node]]:
        """Depth-first pre-order, children in child-list order."""
        stack = [path]
        while stack:
            current = stack.pop()
            node = self.nodes.get(current)
            if node is None:
                continue
            yield current, node
            stack.extend(join(current, child) for child in reversed(node.children))

    def is_special(self, path: str) -> bool:
        return path in SPECIAL_PATHS
