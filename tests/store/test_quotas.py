"""Quotas: C's names and defaults, the error each one gives, GET/SET_QUOTA."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def home_for(dom0: EngineClient, domid: int) -> None:
    dom0.write(f"/local/domain/{domid}", "")
    dom0.ok(Op.SET_PERMS, f"/local/domain/{domid}", f"n{domid}")


def test_names_and_defaults(dom0: EngineClient) -> None:
    names = dom0.ok(Op.GET_QUOTA).rstrip(b"\0").decode().split(" ")
    assert names == [
        "nodes",
        "watches",
        "outstanding",
        "memory",
        "soft-memory",
        "transactions",
        "transaction-nodes",
        "node-permissions",
        "path-max",
        "node-size",
    ]
    expected = [1000, 128, 20, 2621440, 2097152, 10, 1024, 5, 2048, 2048]
    assert [int(dom0.ok(Op.GET_QUOTA, n).rstrip(b"\0")) for n in names] == expected
    assert dom0.error(Op.GET_QUOTA, "permissions") == "EINVAL"


def test_set_quota_global_and_per_domain(dom0: EngineClient, guest: Guest) -> None:
    assert dom0.ok(Op.SET_QUOTA, "nodes", "50") == b"OK\0"
    guest(2)
    assert dom0.ok(Op.GET_QUOTA, "2", "nodes") == b"50\0"
    assert dom0.ok(Op.SET_QUOTA, "2", "nodes", "7") == b"OK\0"
    assert dom0.ok(Op.GET_QUOTA, "2", "nodes") == b"7\0"
    assert dom0.ok(Op.GET_QUOTA, "nodes") == b"50\0"
    assert dom0.error(Op.SET_QUOTA, "nodes", "4294967295") == "EINVAL"
    assert dom0.error(Op.GET_QUOTA, "9", "nodes") == "ENOENT"
    assert guest(3).error(Op.GET_QUOTA, "nodes") == "EACCES"


def test_nodes_quota_is_enospc(dom0: EngineClient, guest: Guest) -> None:
    dom0.ok(Op.SET_QUOTA, "nodes", "3")
    home_for(dom0, 4)
    g = guest(4)
    # The home node is owned by domain 4 and counts as its first node. Current Xen refuses
    # once the new count would reach the quota, so 3 allows two nodes.
    g.write("a", "")
    assert g.error(Op.WRITE, "b", value=b"") == "ENOSPC"
    assert g.error(Op.WRITE, "a/x", value=b"") == "ENOSPC"
    g.ok(Op.RM, "a")
    g.write("b", "")


def test_node_size_quota_is_enospc(dom0: EngineClient, guest: Guest) -> None:
    home_for(dom0, 4)
    g = guest(4)
    # Size = 16-byte header + 4 per permission + value: 16 + 4 + 2027 = 2047 < 2048.
    g.write("small", b"x" * 2027)
    assert g.error(Op.WRITE, "big", value=b"x" * 2028) == "ENOSPC"
    dom0.write("/local/domain/4/dom0big", b"x" * 3000)


def test_watch_quota_is_enospc(dom0: EngineClient, guest: Guest) -> None:
    dom0.ok(Op.SET_QUOTA, "watches", "3")
    g = guest(5)
    g.ok(Op.WATCH, "/a", "1")
    g.ok(Op.WATCH, "/a", "2")
    assert g.error(Op.WATCH, "/a", "3") == "ENOSPC"
    g.ok(Op.UNWATCH, "/a", "1")
    g.ok(Op.WATCH, "/a", "3")


def test_transaction_quotas(dom0: EngineClient, guest: Guest) -> None:
    dom0.ok(Op.SET_QUOTA, "transactions", "3")
    dom0.ok(Op.SET_QUOTA, "transaction-nodes", "3")
    home_for(dom0, 6)
    g = guest(6)
    first = g.start()
    g.start()
    assert g.error(Op.TRANSACTION_START, "") == "ENOSPC"
    g.write("a", "", tx=first)
    assert g.error(Op.WRITE, "b/c/d", value=b"", tx=first) == "ENOSPC"
    # A transaction that hit its node limit can no longer commit.
    assert g.error(Op.TRANSACTION_END, "T", tx=first) == "ENOMEM"


def test_permissions_quota_is_enospc(dom0: EngineClient, guest: Guest) -> None:
    home_for(dom0, 7)
    g = guest(7)
    g.write("p", "")
    # Default quota 5: current Xen refuses once the count reaches it.
    assert g.ok(Op.SET_PERMS, "p", "n7", "r1", "r2", "r3") == b"OK\0"
    assert g.error(Op.SET_PERMS, "p", "n7", "r1", "r2", "r3", "r4") == "ENOSPC"
    assert dom0.ok(Op.SET_PERMS, "/local/domain/7/p", *[f"r{n}" for n in range(9)]) == b"OK\0"


def test_path_max_is_einval(dom0: EngineClient, guest: Guest) -> None:
    dom0.ok(Op.SET_QUOTA, "path-max", "10")
    home_for(dom0, 8)
    g = guest(8)
    g.write("x" * 9, "")
    assert g.error(Op.WRITE, "y" * 10, value=b"") == "EINVAL"
    dom0.write("/local/domain/8/" + "z" * 50, "")


def test_quotas_do_not_limit_privileged_callers(dom0: EngineClient) -> None:
    dom0.ok(Op.SET_QUOTA, "transactions", "1")
    dom0.start()
    dom0.start()


def test_outstanding_quota_stops_processing_a_guest(dom0: EngineClient, guest: Guest) -> None:
    dom0.ok(Op.SET_QUOTA, "outstanding", "2")
    g = guest(9)
    for _ in range(5):
        g.send(Op.GET_DOMAIN_PATH, "9")
    assert len(g.conn.queued_messages) == 2
    assert not dom0.engine.wants_input(g.conn)
    # Delivering the replies lets the engine continue with the buffered requests.
    while g.conn.output_chunk():
        g.conn.output_sent(len(g.conn.output_chunk()))
        dom0.engine.process(g.conn)
    assert g.conn.decoder.pending == b""


def test_memory_quota_is_enomem(dom0: EngineClient, guest: Guest) -> None:
    home_for(dom0, 3)
    dom0.ok(Op.SET_QUOTA, "memory", "3000")
    g = guest(3)
    g.write("a", b"x" * 1000)
    g.write("b", b"x" * 1000)
    assert g.error(Op.WRITE, "c", value=b"x" * 1000) == "ENOMEM"
    # Shrinking is always allowed; dom0 is never limited.
    g.write("a", "")
    g.write("c", b"x" * 1000)
    dom0.write("/local/domain/3/d", b"x" * 3000)
    usage = dom0.ok(Op.CONTROL, "quota", "3").decode()
    # dom0 created d below a node owned by 3, so 3 owns d too (as in C). Per node:
    # header 16 + 4 per permission + value + child names + path length.
    home = 16 + 4 + len("a\0b\0c\0d\0") + len("/local/domain/3")
    values = {"a": 0, "b": 1000, "c": 1000, "d": 3000}
    nodes = sum(16 + 4 + size + len(f"/local/domain/3/{name}") for name, size in values.items())
    assert "nodes            :        5" in usage
    assert f"memory           : {home + nodes:8d}" in usage


def test_a_refused_creation_leaves_no_trace(dom0: EngineClient, guest: Guest) -> None:
    home_for(dom0, 3)
    g = guest(3)
    assert g.error(Op.WRITE, "x/y", value=b"v" * 3000) == "ENOSPC"
    dom0.ok(Op.SET_QUOTA, "3", "memory", "200")
    assert g.error(Op.WRITE, "z", value=b"v" * 300) == "ENOMEM"
    assert dom0.ok(Op.DIRECTORY, "/local/domain/3") == b""
    assert dom0.engine.tree.owned[3] == 1
