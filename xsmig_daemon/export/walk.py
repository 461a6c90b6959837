"""Pre-order walk of the committed tree inside one transaction, with pipelined requests.

Theory of operation: the walk keeps a stack of directory levels. Each level holds the child
names of one node and a window of children whose GET_PERMS, READ and DIRECTORY requests have
already been sent (one write for a whole batch). The next node in pre-order is always the
first prefetched child of the deepest level; when it has children, a new level is pushed and
its own prefetch starts. So replies for later siblings arrive while a subtree is walked, and
memory stays bounded by ``window`` x depth whatever the size of the store.

Inside the transaction the daemon shows every node as it was when the transaction first
touched it; a node that vanished (ENOENT) means the tree changed under us: the commit will
fail with EAGAIN anyway, so the walk stops at once with ``TreeChanged``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..client import Connection, PendingReply, Request, XenstoreError
from ..client.xenstore import parse_directory_part, parse_names, parse_perms, path_request
from ..image.records import NodeData
from ..wire.ops import Op
from .errors import SourceError

DEFAULT_WINDOW = 128
#: DIRECTORY_PART listings restarted because the node changed between chunks, at most.
_PART_RESTARTS = 8

NodeCallback = Callable[[NodeData, list[str]], Awaitable[None]]


class TreeChanged(Exception):  # noqa: N818 - a signal to retry, not a failure
    """The tree changed during the walk; the transaction cannot commit."""


def child_path(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


_NodeReplies = tuple[PendingReply, PendingReply, PendingReply]


@dataclass(slots=True)
class _Level:
    parent: str
    names: list[str]
    next_unsent: int = 0
    ready: deque[tuple[str, _NodeReplies]] = field(default_factory=deque)

    def exhausted(self) -> bool:
        return not self.ready and self.next_unsent >= len(self.names)


class TreeWalker:
    """Walks from ``/`` with every request in transaction ``tx_id``; counts what it sent."""

    def __init__(self, conn: Connection, tx_id: int, window: int = DEFAULT_WINDOW) -> None:
        self.conn = conn
        self.tx_id = tx_id
        self.window = max(1, window)
        self.requests = 0
        self.nodes = 0

    async def walk(self, emit: NodeCallback, root: str = "/") -> None:
        """Call ``emit(node, child_names)`` for every node under ``root`` (itself included),
        parents before children."""
        stack = [_Level("", [root])]
        while stack:
            level = stack[-1]
            if level.exhausted():
                stack.pop()
                continue
            if len(level.ready) <= self.window // 2 and level.next_unsent < len(level.names):
                await self._prefetch(level)
            path, replies = level.ready.popleft()
            node, children = await self._collect(path, replies)
            self.nodes += 1
            await emit(node, children)
            if children:
                stack.append(_Level(path, children))

    async def read_nodes(self, paths: list[str]) -> list[tuple[NodeData, list[str]] | None]:
        """Nodes and their child names, requested together; None for one that does not exist."""
        level = _Level("", paths)
        found: list[tuple[NodeData, list[str]] | None] = []
        while not level.exhausted():
            if not level.ready:
                await self._prefetch(level)
            try:
                found.append(await self._collect(*level.ready.popleft()))
                self.nodes += 1
            except TreeChanged:
                found.append(None)
        return found

    async def _prefetch(self, level: _Level) -> None:
        stop = min(len(level.names), level.next_unsent + self.window - len(level.ready))
        paths = [
            name if not level.parent else child_path(level.parent, name)
            for name in level.names[level.next_unsent : stop]
        ]
        level.next_unsent = stop
        requests = [
            path_request(op, path, self.tx_id)
            for path in paths
            for op in (Op.GET_PERMS, Op.READ, Op.DIRECTORY)
        ]
        handles = await self.conn.submit_many(requests)
        self.requests += len(requests)
        for index, path in enumerate(paths):
            perms, value, listing = handles[3 * index : 3 * index + 3]
            level.ready.append((path, (perms, value, listing)))

    async def _collect(self, path: str, replies: _NodeReplies) -> tuple[NodeData, list[str]]:
        perms_reply, value_reply, listing_reply = replies
        try:
            perms = parse_perms(await perms_reply.payload(), f"GET_PERMS {path}")
            value = await value_reply.payload()
            try:
                children = parse_names(await listing_reply.payload())
            except XenstoreError as exc:
                if exc.name != "E2BIG":
                    raise
                children = await self._directory_in_parts(path)
        except XenstoreError as exc:
            if exc.name == "ENOENT":
                raise TreeChanged(f"{path} vanished during the walk") from None
            raise SourceError(f"{exc}") from None
        if not perms:
            raise SourceError(f"{self.conn.name}: GET_PERMS {path} returned no permissions")
        return NodeData(path, value, perms), children

    async def _directory_in_parts(self, path: str) -> list[str]:
        """A child list too big for one reply, read with DIRECTORY_PART (wire-protocol §11)."""
        for _ in range(_PART_RESTARTS):
            names: list[str] = []
            offset = 0
            generation: int | None = None
            while True:
                payload = f"{path}\0{offset}\0".encode("utf-8", "surrogateescape")
                reply = await self.conn.request(Request(Op.DIRECTORY_PART, payload, self.tx_id))
                self.requests += 1
                gen, chunk, complete = parse_directory_part(reply)
                if generation is not None and gen != generation:
                    break
                generation = gen
                names.extend(chunk)
                offset += sum(len(name.encode("utf-8", "surrogateescape")) + 1 for name in chunk)
                if complete:
                    return names
                if not chunk:
                    raise SourceError(
                        f"{self.conn.name}: DIRECTORY_PART {path} at offset {offset} "
                        "returned nothing and no end marker"
                    )
        raise TreeChanged(f"children of {path} kept changing during DIRECTORY_PART")
