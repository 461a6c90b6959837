"""converge.py against a scripted store that changes while it is read: repair rounds re-read
only what changed, the result is the store at the quiet instant, and it never gives up early."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xsmig_daemon.export.converge import Repairer, Snapshot, converge
from xsmig_daemon.export.walk import NodeCallback, TreeChanged, child_path
from xsmig_daemon.image.records import NodeData, Permission

PERMS = (Permission("n", 0),)
Churn = Callable[["FakeStore"], None]


class FakeStore:
    """path -> value; children derived from the paths. Every operation (a node read by a walk,
    a batch of reads, a barrier) first runs ``churn``, which may commit changes; each change
    queues an event, delivered by the next barrier."""

    def __init__(self, values: dict[str, bytes], churn: Churn | None = None) -> None:
        self.values = {"/": b"", **values}
        for leaf in list(self.values):
            path = leaf
            while path != "/":
                path = path.rsplit("/", 1)[0] or "/"
                self.values.setdefault(path, b"")
        self.churn = churn
        self.ops = 0
        self.reads = 0
        self.events: list[str] = []

    def commit(self, changes: dict[str, bytes | None]) -> None:
        for path, value in changes.items():
            if value is None:
                for gone in [p for p in self.values if p == path or p.startswith(path + "/")]:
                    del self.values[gone]
            else:
                self.values[path] = value
            self.events.append(path)

    def children(self, path: str) -> list[str]:
        prefix = "/" if path == "/" else path + "/"
        return sorted(
            p[len(prefix) :]
            for p in self.values
            if p != "/" and p.startswith(prefix) and "/" not in p[len(prefix) :]
        )

    def op(self) -> None:
        self.ops += 1
        if self.churn is not None:
            self.churn(self)

    def node(self, path: str) -> tuple[NodeData, list[str]] | None:
        self.reads += 1
        if path not in self.values:
            return None
        return NodeData(path, self.values[path], PERMS), self.children(path)

    # NodeReader
    async def read_nodes(self, paths: list[str]) -> list[tuple[NodeData, list[str]] | None]:
        self.op()
        return [self.node(path) for path in paths]

    async def walk(self, emit: NodeCallback, root: str = "/") -> None:
        stack = [root]
        while stack:
            self.op()
            path = stack.pop()
            found = self.node(path)
            if found is None:
                raise TreeChanged(f"{path} vanished during the walk")
            await emit(*found)
            stack.extend(child_path(path, name) for name in reversed(found[1]))

    async def drain(self) -> list[str]:
        self.op()
        taken, self.events = self.events, []
        return taken

    def preorder(self) -> list[tuple[str, bytes]]:
        out = []
        stack = ["/"]
        while stack:
            path = stack.pop()
            out.append((path, self.values[path]))
            stack.extend(child_path(path, name) for name in reversed(self.children(path)))
        return out


async def run(store: FakeStore, max_rounds: int = 16) -> tuple[Snapshot, Repairer, int]:
    snapshot = Snapshot()
    repairer = Repairer(snapshot, store)
    await repairer.first_walk()
    rounds = await converge(snapshot, repairer, store.drain, max_rounds)
    return snapshot, repairer, rounds


def as_pairs(snapshot: Snapshot) -> list[tuple[str, bytes]]:
    return [(node.path, node.value) for node, _children in snapshot.preorder()]


def filler(count: int) -> dict[str, bytes]:
    return {f"/filler/f{i // 50}/n{i}": b"x" for i in range(count)}


def pair_writer(every: int, stop_after: int | None = None) -> Churn:
    """Commits /pair/a and /pair/b together on every ``every``-th operation."""

    def churn(store: FakeStore) -> None:
        if store.ops % every or (stop_after is not None and store.ops > stop_after):
            return
        value = str(store.ops).encode()
        store.commit({"/pair/a": value, "/pair/b": value})

    return churn


async def test_a_quiet_walk_needs_no_round() -> None:
    store = FakeStore(filler(100))
    snapshot, repairer, rounds = await run(store)
    assert rounds == 0 and repairer.reads == 0
    assert as_pairs(snapshot) == store.preorder()


async def test_a_writer_that_never_stops_is_caught_between_two_commits() -> None:
    # A commit every 3rd operation, for ever: no whole walk of 300 nodes is ever quiet, but
    # a round (one batch of reads and a barrier: 2 operations) sometimes is.
    store = FakeStore({**filler(300), "/pair/a": b"0", "/pair/b": b"0"}, pair_writer(3))
    snapshot, repairer, rounds = await run(store)
    assert 1 <= rounds <= 3
    assert as_pairs(snapshot) == store.preorder()
    values = dict(as_pairs(snapshot))
    assert values["/pair/a"] == values["/pair/b"] != b"0"
    # Only the changed paths were read again, not the store.
    assert repairer.reads <= 2 * rounds


async def test_created_subtree_with_new_parents_and_a_removed_subtree() -> None:
    def churn(store: FakeStore) -> None:
        if store.ops == 40:
            store.commit({"/filler/f0": None, "/new/deep/er/leaf": b"v"})
            store.values.setdefault("/new", b"")
            store.values.setdefault("/new/deep", b"")
            store.values.setdefault("/new/deep/er", b"")

    store = FakeStore(filler(200), churn)
    snapshot, _repairer, rounds = await run(store)
    assert rounds == 1
    assert as_pairs(snapshot) == store.preorder()
    paths = [path for path, _ in as_pairs(snapshot)]
    assert "/new/deep/er/leaf" in paths and not any(p.startswith("/filler/f0") for p in paths)


async def test_a_node_vanishing_mid_walk_is_filled_in_later() -> None:
    def churn(store: FakeStore) -> None:
        if store.ops == 5:
            # Read /filler's listing already; f1 goes before the walk gets there.
            store.commit({"/filler/f1": None})

    store = FakeStore(filler(200), churn)
    snapshot, _repairer, _rounds = await run(store)
    assert as_pairs(snapshot) == store.preorder()
    assert any(path.startswith("/filler/f3/") for path, _ in as_pairs(snapshot))


async def test_domains_changing_fail_the_attempt() -> None:
    def churn(store: FakeStore) -> None:
        if store.ops == 3:
            store.events.append("@introduceDomain")

    with pytest.raises(TreeChanged, match="@introduceDomain"):
        await run(FakeStore(filler(20), churn))


async def test_never_quiet_gives_up_after_the_rounds() -> None:
    store = FakeStore({**filler(20), "/pair/a": b"0", "/pair/b": b"0"}, pair_writer(1))
    with pytest.raises(TreeChanged, match="/pair/a still changing after 4 repair rounds"):
        await run(store, max_rounds=4)


def test_preorder_of_an_unread_child_is_refused() -> None:
    snapshot = Snapshot()
    snapshot.nodes["/"] = (NodeData("/", b"", PERMS), ["missing"])
    with pytest.raises(TreeChanged, match="/missing is listed"):
        list(snapshot.preorder())
