"""LaneWalker against scripted in-test daemons, one per lane, each answering every batch in
reverse order: pre-order whatever the lanes, window and budget; DIRECTORY_PART; a vanished
node; ``read_nodes``; the budget bounds what is in flight."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from faketree import FakeTree, sample_pre_order, sample_tree

from xsmig_daemon.client.bulk import Lane, send_lanes
from xsmig_daemon.export.lanewalk import LaneWalker
from xsmig_daemon.export.walk import TreeChanged
from xsmig_daemon.image.records import NodeData
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op


@asynccontextmanager
async def lanes_against(trees: list[FakeTree]) -> AsyncIterator[list[Lane]]:
    async with trio.open_nursery() as nursery:
        lanes = []
        for index, tree in enumerate(trees):
            left, right = socket.socketpair()
            served = trio.SocketStream(trio.socket.from_stdlib_socket(right))
            nursery.start_soon(tree.serve, served)
            lanes.append(Lane(left, name=f"fake {index}", timeout=5))
        yield lanes
        nursery.cancel_scope.cancel()
        for lane in lanes:
            lane.sock.close()


def fakes(children: dict[str, list[str]], count: int) -> list[FakeTree]:
    return [FakeTree(children) for _ in range(count)]


async def lane_walk(
    trees: list[FakeTree], *, window: int = 128, budget: int = 3072, peak: list[int] | None = None
) -> list[NodeData]:
    nodes: list[NodeData] = []
    changed: TreeChanged | None = None
    async with lanes_against(trees) as lanes:
        walker = LaneWalker(lanes, 7, window=window, budget=budget)

        async def emit(node: NodeData, _children: list[str]) -> None:
            nodes.append(node)
            if peak is not None:
                peak.append(sum(lane.in_flight for lane in lanes))

        try:
            await walker.walk(emit)
        except TreeChanged as exc:
            # Raised outside the fakes' nursery, so the test sees it ungrouped.
            changed = exc
    if changed is not None:
        raise changed
    return nodes


@pytest.mark.parametrize("lanes", [1, 3])
@pytest.mark.parametrize(("window", "budget"), [(1, 1), (2, 3), (128, 3072)])
async def test_pre_order_whatever_the_lanes_window_and_budget(
    lanes: int, window: int, budget: int
) -> None:
    trees = fakes(sample_tree(5), lanes)
    nodes = await lane_walk(trees, window=window, budget=budget)
    assert [n.path for n in nodes] == sample_pre_order(5)
    assert nodes[3].value == b"value of /a/b/deep"
    assert [str(p) for p in nodes[0].perms] == ["n0", "r1"]
    assert all(tree.served > 0 for tree in trees), "every lane carries requests"


def deep_and_wide() -> dict[str, list[str]]:
    """Subtrees of different depths and widths, so that listings arrive in any order."""
    children: dict[str, list[str]] = {"/": [f"t{i}" for i in range(6)]}
    for i in range(6):
        top = f"/t{i}"
        children[top] = [f"m{j}" for j in range(i + 1)]
        for j in range(i + 1):
            mid = f"{top}/m{j}"
            children[mid] = [f"leaf{k}" for k in range(3 * j)]
            for k in range(3 * j):
                children[f"{mid}/leaf{k}"] = []
    return children


def expected_pre_order(children: dict[str, list[str]], path: str = "/") -> list[str]:
    found = [path]
    for name in children[path]:
        found += expected_pre_order(children, f"{path.rstrip('/')}/{name}")
    return found


@pytest.mark.parametrize(("lanes", "window", "budget"), [(4, 2, 4), (5, 3, 50), (2, 64, 8)])
async def test_pre_order_of_an_uneven_tree(lanes: int, window: int, budget: int) -> None:
    children = deep_and_wide()
    nodes = await lane_walk(fakes(children, lanes), window=window, budget=budget)
    assert [n.path for n in nodes] == expected_pre_order(children)


async def test_budget_bounds_the_requests_in_flight() -> None:
    children = sample_tree(2000)
    peak: list[int] = []
    nodes = await lane_walk(fakes(children, 4), window=16, budget=64, peak=peak)
    assert len(nodes) == 2007
    # Three requests per node: the budget, plus one window per level when starved.
    assert max(peak) <= 3 * (64 + 16 * 3)


async def test_big_child_list_uses_directory_part_and_restarts_on_a_new_generation() -> None:
    trees = fakes(sample_tree(600), 3)  # 600 x 11 bytes: E2BIG for DIRECTORY
    for tree in trees:
        tree.bump_generation_once_at = "/wide"
    nodes = await lane_walk(trees, window=32)
    wide = [n.path for n in nodes if n.path.startswith("/wide/")]
    assert wide == [f"/wide/child-{i:04d}" for i in range(600)]
    # 7 chunks of at most 1000 bytes; the listing was read twice (the first try restarted).
    assert sum(tree.part_requests for tree in trees) > 7


async def test_vanished_node_means_the_tree_changed() -> None:
    children = sample_tree(0)
    children["/a"] = ["b", "gone"]
    with pytest.raises(TreeChanged, match="/a/gone vanished"):
        await lane_walk(fakes(children, 2), window=8)


async def test_read_nodes_reads_each_path_alone_and_none_for_a_missing_one() -> None:
    children = sample_tree(3)
    found: list[tuple[NodeData, list[str]] | None] = []
    async with lanes_against(fakes(children, 2)) as lanes:
        walker = LaneWalker(lanes)
        found = await walker.read_nodes(["/wide", "/missing", "/a/c"])
    assert found[1] is None
    assert found[0] is not None and found[2] is not None
    assert (found[0][0].path, found[0][1]) == ("/wide", [f"child-{i:04d}" for i in range(3)])
    assert (found[2][0].path, found[2][1]) == ("/a/c", [])
    assert walker.nodes == 2


async def test_a_full_socket_is_sent_while_every_lane_is_read() -> None:
    """A daemon that bounds its output stops reading a client that does not read: here the
    peer first sends all its replies and only then reads the requests. ``send_lanes`` must
    keep reading while its socket is full, or both sides would wait for ever."""
    count = 20_000
    left, right = socket.socketpair()
    lane = Lane(left, name="full", timeout=10)
    for index in range(count):
        lane.queue(Op.READ, f"/request/{index:06d}".encode() + b"\0")
    replies = b"".join(
        encode_message(Op.READ, req_id, 0, b"x" * 100) for req_id in range(1, count + 1)
    )
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(right))
    received = 0

    async def bounded_peer() -> None:
        nonlocal received
        await peer.send_all(replies)
        while chunk := await peer.receive_some(1 << 16):
            received += len(chunk)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bounded_peer)
            await send_lanes([lane])
            lane.sock.shutdown(socket.SHUT_WR)
            while lane.in_flight and lane.take(count) is None:
                await lane.wait_readable("the last reply")
                lane.pump()
    assert received == count * (16 + len("/request/000000") + 1)
    lane.sock.close()


async def test_a_walk_after_a_stopped_one_drops_the_stale_replies() -> None:
    """A walk stopped by a vanished node leaves replies on the way; the next walk on the same
    lanes (a repair round) drops them instead of keeping them for ever."""
    children = sample_tree(300)
    children["/a"] = ["b", "gone"]
    async with lanes_against(fakes(children, 3)) as lanes:
        walker = LaneWalker(lanes, window=64)

        async def ignore(_node: NodeData, _names: list[str]) -> None:
            await trio.lowlevel.checkpoint()

        with pytest.raises(TreeChanged):
            await walker.walk(ignore)
        found = await walker.read_nodes(["/z"])
        for lane in lanes:
            # A last round trip: every earlier reply on this lane has arrived before its own.
            last = lane.queue(Op.READ, b"/z\0")
            await send_lanes([lane])
            while not lane.has(last):
                await lane.wait_readable("the last reply")
                lane.pump()
            lane.take(last)
    assert found[0] is not None and found[0][0].path == "/z"
    assert all(not lane._replies and lane.in_flight == 0 for lane in lanes)
