"""A watched walk that converges under continuous churn: repair rounds instead of restarts.

``watched_view`` (consistency.py) proves a walk consistent only when no watch event at all
arrives while it runs; with writers that never pause no whole walk is ever quiet. This module
keeps the first walk and repairs it:

1. A watch on ``/``, ``@introduceDomain`` and ``@releaseDomain`` is registered, then the whole
   tree is walked into a ``Snapshot`` (path -> node and child names). Every change event that
   arrives is recorded, none stops the walk.
2. A round trip (the *barrier*) follows. C xenstored queues a watch event when the change
   commits, ahead of any later reply on the same connection, so once the barrier's reply is in,
   every change committed before it has been seen.
3. While the last stretch saw events, a *repair round* re-reads only the paths those events
   named: the node itself; its parent when it appeared or vanished (the parent's child list
   changed); whole subtrees only for children that are new to the snapshot. Then a barrier.
4. A round during which no event arrived between the previous barrier and its own barrier is
   *quiet*: the snapshot is the store at that instant.

Why a quiet round proves it. Take any node X in the snapshot, last read at time t. Any change
to X after t fires an event naming X (or an ancestor that vanished, whose subtree is
dropped and re-read) that arrives before the barrier following the change; its path is
refreshed in the next round, which reads X again after that event. So X's last read is newer
than every change to X up to the final barrier except changes inside the quiet round, and
there were none. The same holds for child lists, because a child list only changes when a
child appears or vanishes, which fires an event for that child, and a refresh of a child that
is new to the snapshot or gone re-reads its parent. Events on ``@introduceDomain`` /
``@releaseDomain`` change what was probed before the walk (the rings), so they fail the
attempt (``TreeChanged``) instead. Any event counts, spurious ones included, which only costs
a re-read.

Memory: the snapshot holds the whole tree, so this mode is used only after a streamed walk
was disturbed (wire.py); rounds re-read in proportion to the changed set, not the store.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Protocol

from ..client import Xenstore
from ..image.records import NodeData
from .consistency import ChangeWatch, registered
from .walk import NodeCallback, TreeChanged, child_path

#: Repair rounds after the first walk before the attempt gives up.
DEFAULT_ROUNDS = 256


def parent_path(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


class NodeReader(Protocol):
    async def read_nodes(self, paths: list[str]) -> list[tuple[NodeData, list[str]] | None]: ...

    async def walk(self, emit: NodeCallback, root: str = "/") -> None: ...


class Snapshot:
    """The tree as last read: path -> (node, child names)."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[NodeData, list[str]]] = {}

    async def put(self, node: NodeData, children: list[str]) -> None:
        self.nodes[node.path] = (node, children)

    def drop(self, path: str) -> None:
        """Forget ``path`` and everything under it."""
        stack = [path]
        while stack:
            entry = self.nodes.pop(stack.pop(), None)
            if entry is not None:
                stack.extend(child_path(entry[0].path, name) for name in entry[1])

    def preorder(self) -> Iterator[tuple[NodeData, list[str]]]:
        stack = ["/"]
        while stack:
            path = stack.pop()
            entry = self.nodes.get(path)
            if entry is None:
                raise TreeChanged(f"{path} is listed by its parent but was never read")
            yield entry
            stack.extend(child_path(path, name) for name in reversed(entry[1]))


class Repairer:
    """Brings a ``Snapshot`` up to date for a set of changed paths (one repair round)."""

    def __init__(self, snapshot: Snapshot, reader: NodeReader) -> None:
        self.snapshot = snapshot
        self.reader = reader
        self.reads = 0
        #: A walk stopped at a vanished node: children listed in the snapshot may be unread.
        self.incomplete = False

    async def first_walk(self) -> None:
        try:
            await self.reader.walk(self.snapshot.put)
        except TreeChanged:
            self.incomplete = True

    async def round(self, changed: list[str]) -> None:
        """Re-read ``changed`` (all requests at once), then parents of what appeared or
        vanished, level by level."""
        done: set[str] = set()
        batch = list(dict.fromkeys(changed))
        while batch:
            done.update(batch)
            parents = await self._refresh(batch)
            batch = [p for p in dict.fromkeys(parents) if p not in done]
        if self.incomplete:
            # Whatever vanished fired an event: this round is not quiet, the next fills again.
            self.incomplete = False
            await self._fill()

    async def _refresh(self, paths: list[str]) -> list[str]:
        """Re-read ``paths``; returns the parents whose child lists may have changed."""
        known = [path in self.snapshot.nodes for path in paths]
        self.reads += len(paths)
        parents = []
        for path, was_known, fresh in zip(
            paths, known, await self.reader.read_nodes(paths), strict=True
        ):
            if fresh is None:
                self.snapshot.drop(path)
            else:
                await self._reconcile(*fresh)
            if path != "/" and (fresh is None or not was_known):
                # It appeared or vanished: its parent's child list may have changed too.
                parents.append(parent_path(path))
        return parents

    async def _fill(self) -> None:
        """Walk every child that its parent lists but the snapshot lacks."""
        listed = [
            child_path(path, name)
            for path, (_node, children) in self.snapshot.nodes.items()
            for name in children
        ]
        for path in listed:
            if path not in self.snapshot.nodes:
                await self._walk_new(path)

    async def _reconcile(self, node: NodeData, children: list[str]) -> None:
        old = self.snapshot.nodes.get(node.path)
        await self.snapshot.put(node, children)
        if old is not None:
            for gone in set(old[1]) - set(children):
                self.snapshot.drop(child_path(node.path, gone))
        for name in children:
            path = child_path(node.path, name)
            if path not in self.snapshot.nodes:
                await self._walk_new(path)

    async def _walk_new(self, path: str) -> None:
        try:
            await self.reader.walk(self.snapshot.put, path)
        except TreeChanged:
            # Part of it vanished mid-walk (its event is on the way, so the round is not
            # quiet): keep none of it; the fill pass walks what is left.
            self.snapshot.drop(path)
            self.incomplete = True


async def converge(
    snapshot: Snapshot,
    repairer: Repairer,
    drain: Callable[[], Awaitable[list[str]]],
    max_rounds: int,
) -> int:
    """Repair rounds until one is quiet; returns the rounds run. ``drain`` makes a barrier
    round trip and returns the change paths seen since the previous drain."""
    changed = await drain()
    for rounds in range(max_rounds + 1):
        if not changed:
            return rounds
        specials = [p for p in changed if p.startswith("@")]
        if specials:
            raise TreeChanged(f"{specials[0]} fired during the walk (domains changed)")
        if rounds == max_rounds:
            break
        await repairer.round(changed)
        changed = await drain()
    raise TreeChanged(
        f"{changed[0]} still changing after {max_rounds} repair rounds "
        f"({len(changed)} watch events in the last)"
    )


@asynccontextmanager
async def change_feed(
    xs: Xenstore, attempt: int
) -> AsyncIterator[Callable[[], Awaitable[list[str]]]]:
    """Watches registered, events collected in the background; yields ``drain``."""
    watch = ChangeWatch(f"xsmig-converge-{os.getpid()}-{attempt}")

    async def drain() -> list[str]:
        await xs.get_perms("/")
        # The barrier's reply is in: every event queued before it was either taken by the
        # background collector already or still waits in the channel.
        watch.take_queued(xs)
        taken, watch.changes = watch.changes, []
        return taken

    async with registered(xs, watch, stop_at_change=False):
        yield drain
