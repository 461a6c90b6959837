"""A scripted in-test daemon serving a tree to the walk tests (walk.py, lanewalk.py)."""

from __future__ import annotations

import trio

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
        self.served = 0

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
            self.served += len(batch)
            for request in reversed(batch):
                op, body = self.answer(request)
                await stream.send_all(encode_message(op, request.req_id, request.tx_id, body))


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


def sample_pre_order(wide: int) -> list[str]:
    """The paths of ``sample_tree(wide)`` in the order a walk must emit them."""
    return [
        "/",
        "/a",
        "/a/b",
        "/a/b/deep",
        "/a/c",
        "/wide",
        *(f"/wide/child-{i:04d}" for i in range(wide)),
        "/z",
    ]
