"""TreeWalker against a scripted in-test daemon: pre-order, replies out of order, DIRECTORY_PART
with a generation change, a vanished node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from xsmig_daemon.client import Connection, open_connection
from xsmig_daemon.export.walk import TreeChanged, TreeWalker
from xsmig_daemon.image.records import NodeData
from xsmig_daemon.wire.framing import Message, MessageDecoder, encode_message, split_strings
from xsmig_daemon.wire.ops import Op

PAYLOAD_MAX = 4096


class FakeTree:
    """Answers GET_PERMS / READ / DIRECTORY / DIRECTORY_PART from a dict; every batch of
    requests that arrives together is answered in reverse order."""

    def __init__(self, children: dict[str, list[str]]) -> None:
        self.children = children
        self.generation = 1
        self.bump_generation_once_at: str | None = None
        self.part_requests = 0

    def answer(self, request: Message) -> tuple[int, bytes]:
        path = split_strings(request.payload)[0].decode()
        if path not in self.children:
            return Op.ERROR, b"ENOENT\0"
        names = self.children[path]
        listing = b"".join(name.encode() + b"\0" for name in names)
        if request.op == Op.GET_PERMS:
            return request.op, b"n0\0r1\0"
        if request.op == Op.READ:
            return request.op, f"value of {path}".encode()
        if request.op == Op.DIRECTORY:
            if len(listing) > PAYLOAD_MAX:
                return Op.ERROR, b"E2BIG\0"
            return request.op, listing
        assert request.op == Op.DIRECTORY_PART
        self.part_requests += 1
        offset = int(split_strings(request.payload)[1])
        if self.bump_generation_once_at == path and offset > 0:
            self.bump_generation_once_at = None
            self.generation += 1
        head = f"{self.generation}\0".encode()
        chunk = b""
        rest = listing[offset:]
        for raw in rest.split(b"\0")[:-1]:
            if len(head) + len(chunk) + len(raw) + 2 > 1000:
                return request.op, head + chunk
            chunk += raw + b"\0"
        return request.op, head + chunk + b"\0"

    async def serve(self, stream: trio.SocketStream) -> None:
        decoder = MessageDecoder()
        while chunk := await stream.receive_some(65536):
            decoder.feed(bytes(chunk))
            batch = list(decoder.messages())
            for request in reversed(batch):
                op, body = self.answer(request)
                await stream.send_all(encode_message(op, request.req_id, request.tx_id, body))


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


def sample_tree(wide: int) -> dict[str, list[str]]:
    tree = {
        "/": ["a", "wide", "z"],
        "/a": ["b", "c"],
        "/a/b": ["deep"],
        "/a/b/deep": [],
        "/a/c": [],
        "/wide": [f"child-{i:04d}" for i in range(wide)],
        "/z": [],
    }
    for i in range(wide):
        tree[f"/wide/child-{i:04d}"] = []
    return tree


@pytest.mark.parametrize("window", [1, 2, 128])
async def test_pre_order_whatever_the_window_and_reply_order(window: int) -> None:
    nodes = await walk(FakeTree(sample_tree(5)), window)
    assert [n.path for n in nodes] == [
        "/",
        "/a",
        "/a/b",
        "/a/b/deep",
        "/a/c",
        "/wide",
        *(f"/wide/child-{i:04d}" for i in range(5)),
        "/z",
    ]
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
