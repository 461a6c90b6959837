"""TreeWalker against a scripted in-test daemon: pre-order, replies out of order, DIRECTORY_PART
with a generation change, a vanished node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from faketree import FakeTree, sample_pre_order, sample_tree

from xsmig_daemon.client import Connection, open_connection
from xsmig_daemon.export.walk import TreeChanged, TreeWalker
from xsmig_daemon.image.records import NodeData


@asynccontextmanager
async def walk_against(tree: FakeTree) -> AsyncIterator[Connection]:
    left, right = trio.socket.socketpair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tree.serve, trio.SocketStream(right))
        async with open_connection(trio.SocketStream(left), name="fake", timeout=5) as conn:
            yield conn
        nursery.cancel_scope.cancel()


async def walk(tree: FakeTree, window: int) -> list[NodeData]:
    nodes: list[NodeData] = []

    async def emit(node: NodeData, _children: list[str]) -> None:
        nodes.append(node)

    changed: TreeChanged | None = None
    async with walk_against(tree) as conn:
        try:
            await TreeWalker(conn, 7, window).walk(emit)
        except TreeChanged as exc:
            # Raised outside the fake daemon's nursery, so the test sees it ungrouped.
            changed = exc
    if changed is not None:
        raise changed
    return nodes


@pytest.mark.parametrize("window", [1, 2, 128])
async def test_pre_order_whatever_the_window_and_reply_order(window: int) -> None:
    nodes = await walk(FakeTree(sample_tree(5)), window)
    assert [n.path for n in nodes] == sample_pre_order(5)
    assert nodes[3].value == b"value of /a/b/deep"
    assert [str(p) for p in nodes[0].perms] == ["n0", "r1"]


async def test_big_child_list_uses_directory_part_and_restarts_on_a_new_generation() -> None:
    tree = FakeTree(sample_tree(600))  # 600 x 11 bytes: E2BIG for DIRECTORY
    tree.bump_generation_once_at = "/wide"
    nodes = await walk(tree, 32)
    wide = [n.path for n in nodes if n.path.startswith("/wide/")]
    assert wide == [f"/wide/child-{i:04d}" for i in range(600)]
    # 7 chunks of at most 1000 bytes; the listing was read twice (the first try restarted).
    assert tree.part_requests > 7


async def test_vanished_node_means_the_tree_changed() -> None:
    children = sample_tree(0)
    children["/a"] = ["b", "gone"]
    with pytest.raises(TreeChanged, match="/a/gone vanished"):
        await walk(FakeTree(children), 8)
