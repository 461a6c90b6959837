"""Node operations as dom0: READ/WRITE/MKDIR/RM/DIRECTORY(_PART), implicit parents."""

from __future__ import annotations

from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient


def test_initial_tree(dom0: EngineClient) -> None:
    assert dom0.ok(Op.DIRECTORY, "/") == b"tool\0"
    assert dom0.ok(Op.DIRECTORY, "/tool") == b"xenstored\0"
    assert dom0.ok(Op.GET_PERMS, "/") == b"n0\0"


def test_write_creates_parents_and_read_returns_raw_value(dom0: EngineClient) -> None:
    dom0.write("/a/b/c", b"x\0y")
    assert dom0.read("/a/b/c") == b"x\0y"
    assert dom0.read("/a/b") == b""
    assert dom0.ok(Op.DIRECTORY, "/a") == b"b\0"
    assert dom0.ok(Op.DIRECTORY, "/") == b"tool\0a\0"


def test_children_keep_creation_order(dom0: EngineClient) -> None:
    for name in ("z", "a", "m"):
        dom0.write(f"/d/{name}", "")
    assert dom0.ok(Op.DIRECTORY, "/d") == b"z\0a\0m\0"


def test_missing_node(dom0: EngineClient) -> None:
    assert dom0.error(Op.READ, "/nope") == "ENOENT"
    assert dom0.error(Op.DIRECTORY, "/nope") == "ENOENT"


def test_mkdir_is_idempotent_and_keeps_value(dom0: EngineClient) -> None:
    dom0.write("/m", "v")
    assert dom0.ok(Op.MKDIR, "/m") == b"OK\0"
    assert dom0.read("/m") == b"v"
    assert dom0.ok(Op.MKDIR, "/n/o") == b"OK\0"
    assert dom0.read("/n/o") == b""


def test_rm_is_recursive_and_ok_when_absent_under_existing_parent(dom0: EngineClient) -> None:
    dom0.write("/r/a/b", "1")
    assert dom0.ok(Op.RM, "/r/a") == b"OK\0"
    assert dom0.error(Op.READ, "/r/a/b") == "ENOENT"
    assert dom0.ok(Op.DIRECTORY, "/r") == b""
    assert dom0.ok(Op.RM, "/r/gone") == b"OK\0"
    assert dom0.error(Op.RM, "/nothing/below") == "ENOENT"
    assert dom0.error(Op.RM, "/") == "EINVAL"


def test_invalid_paths_and_payloads(dom0: EngineClient) -> None:
    assert dom0.error(Op.READ, "/a/") == "EINVAL"
    assert dom0.error(Op.READ, "/a b") == "EINVAL"
    assert dom0.error(Op.READ, "@releaseDomain") == "EINVAL"
    assert dom0.error(Op.WRITE, "//x", value=b"") == "EINVAL"
    # NUL inside the path: two strings where one is expected.
    assert dom0.error(Op.READ, b"/a\0b") == "EINVAL"
    assert dom0.error(Op.READ) == "EINVAL"
    assert dom0.call(Op.WRITE).op == Op.ERROR


def test_unknown_operation(dom0: EngineClient) -> None:
    assert dom0.error(Op.RESTRICT, "1") == "ENOSYS"
    assert dom0.error(Op.WATCH_EVENT, "x") == "ENOSYS"
    assert dom0.error(Op.INVALID) == "ENOSYS"


def test_directory_larger_than_a_payload_is_e2big_and_directory_part_pages(
    dom0: EngineClient,
) -> None:
    names = [f"child{n:04d}-{'x' * 20}" for n in range(300)]
    for name in names:
        dom0.write(f"/big/{name}", "")
    assert dom0.error(Op.DIRECTORY, "/big") == "E2BIG"
    collected: list[bytes] = []
    offset = 0
    generation = None
    while True:
        reply = dom0.ok(Op.DIRECTORY_PART, "/big", str(offset))
        gen, rest = reply.split(b"\0", 1)
        assert len(reply) <= 4096
        generation = generation or gen
        assert gen == generation
        entries = rest.split(b"\0")
        assert entries[-1] == b""
        entries.pop()
        if entries and entries[-1] == b"":
            collected.extend(entries[:-1])
            break
        collected.extend(entries)
        offset += sum(len(e) + 1 for e in entries)
    assert [c.decode() for c in collected] == names
    end = dom0.ok(Op.DIRECTORY_PART, "/big", "999999")
    assert end == generation + b"\0\0"


def test_relative_paths_of_a_socket_client_resolve_under_dom0_home(dom0: EngineClient) -> None:
    dom0.write("rel/x", "1")
    assert dom0.read("/local/domain/0/rel/x") == b"1"


def test_pipelined_requests_answered_in_order(dom0: EngineClient) -> None:
    first = dom0.send(Op.WRITE, "/p", value=b"1")
    second = dom0.send(Op.READ, "/p")
    third = dom0.send(Op.READ, "/missing")
    dom0.drain()
    assert [(m.req_id, m.op, m.payload) for m in dom0.replies] == [
        (first, Op.WRITE, b"OK\0"),
        (second, Op.READ, b"1"),
        (third, Op.ERROR, b"ENOENT\0"),
    ]


def test_get_domain_path(dom0: EngineClient) -> None:
    assert dom0.ok(Op.GET_DOMAIN_PATH, "7") == b"/local/domain/7\0"
    # C formats atoi() of the argument (observed on the real 4.17 daemon).
    assert dom0.ok(Op.GET_DOMAIN_PATH, "x") == b"/local/domain/0\0"
    assert dom0.ok(Op.GET_DOMAIN_PATH, "99999") == b"/local/domain/99999\0"
    assert dom0.ok(Op.GET_DOMAIN_PATH, "-1") == b"/local/domain/4294967295\0"
    assert dom0.error(Op.GET_DOMAIN_PATH) == "EINVAL"
