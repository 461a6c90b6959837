"""Engine state -> records (C HEAD order) and records -> engine (restore)."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalData,
    GlobalQuotaData,
    NodeAccess,
    NodeData,
    Permission,
    RingSpec,
    SocketSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.store import Engine
from xsmig_daemon.store.image_state import restore_engine, state_records
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def build_state(dom0: EngineClient, guest: Guest) -> EngineClient:
    dom0.write("/local/domain/3", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/3", "n3", "r0")
    g = guest(3)
    g.write("name", "vm")
    g.ok(Op.WATCH, "name", "rel")
    dom0.ok(Op.WATCH, "/local", "deep", "2")
    tx = g.start()
    g.write("name", "renamed", tx=tx)
    g.read("/local/domain/3", tx=tx)
    g.drain()
    # Leave one queued reply and half a request behind.
    g.send(Op.GET_DOMAIN_PATH, "3")
    g.engine.receive(g.conn, encode_message(Op.READ, 77, 0, b"/x\0")[:10])
    return g


def test_record_order_and_content(dom0: EngineClient, guest: Guest) -> None:
    dom0.engine.listen_fd = 3
    build_state(dom0, guest)
    records = list(state_records(dom0.engine))
    kinds = [type(r).__name__ for r in records]
    assert kinds[:2] == ["GlobalData", "GlobalQuotaData"]
    assert records[0] == GlobalData(3, -1)
    quotas = records[1]
    assert isinstance(quotas, GlobalQuotaData)
    assert quotas.domain_quotas[0] == ("nodes", 1000)
    # dom0's socket first (created first), with its depth watch as an extended record.
    assert records[2] == ConnectionData(1, SocketSpec(5))
    assert records[3] == WatchDataExtended(1, "/local", "deep", 2)
    ring = records[4]
    assert isinstance(ring, ConnectionData)
    assert isinstance(ring.spec, RingSpec) and ring.spec.domid == 3
    assert ring.spec.tdomid == 0x7FF4
    assert ring.in_data == encode_message(Op.READ, 77, 0, b"/x\0")[:10]
    assert ring.out_data.endswith(b"/local/domain/3\0")
    assert ring.out_resp_len == 0
    assert ring.unique_id is not None
    assert records[5] == WatchData(2, "name", "rel")
    assert records[6] == TransactionData(2, 1)
    tx_nodes = [r for r in records if isinstance(r, NodeData) and r.conn_id == 2]
    by_path = {r.path: r for r in tx_nodes}
    assert by_path["/local/domain/3/name"].value == b"renamed"
    assert by_path["/local/domain/3/name"].access == NodeAccess.READ | NodeAccess.WRITTEN
    assert by_path["/local/domain/3"].access == NodeAccess.READ
    committed = [r for r in records if isinstance(r, NodeData) and r.conn_id == 0]
    assert [r.path for r in committed] == [
        "/",
        "/tool",
        "/tool/xenstored",
        "/local",
        "/local/domain",
        "/local/domain/3",
        "/local/domain/3/name",
        "@releaseDomain",
        "@introduceDomain",
    ]
    assert committed[5].perms == (Permission("n", 3), Permission("r", 0))
    assert committed[6].value == b"vm"
    domains = [r for r in records if isinstance(r, DomainData)]
    assert [d.domid for d in domains] == [0, 3]
    assert records[-1] is domains[-1]


def test_restore_round_trip_and_behaviour(dom0: EngineClient, guest: Guest) -> None:
    build_state(dom0, guest)
    records = list(state_records(dom0.engine))
    restored = restore_engine(records)
    assert list(state_records(restored)) == records

    ring = restored.domain_connection(3)
    assert ring is not None
    g = EngineClient(restored, ring)
    # The half-received request continues where it stopped.
    restored.receive(ring, encode_message(Op.READ, 77, 0, b"/x\0")[10:])
    g.drain()
    assert [(m.req_id, m.payload) for m in g.replies] == [
        (6, b"/local/domain/3\0"),
        (77, b"EACCES\0"),
    ]
    g.replies.clear()
    # The restored transaction still sees its own write and commits.
    assert g.read("name", tx=1) == b"renamed"
    assert g.ok(Op.TRANSACTION_END, "T", tx=1) == b"OK\0"
    assert g.read("name") == b"renamed"


def test_restored_transaction_conflicts_if_a_read_node_changed(
    dom0: EngineClient, guest: Guest
) -> None:
    build_state(dom0, guest)
    records = [
        NodeData(r.path, b"changed", r.perms)
        if isinstance(r, NodeData) and r.conn_id == 0 and r.path == "/local/domain/3"
        else r
        for r in state_records(dom0.engine)
    ]
    restored = restore_engine(records)
    ring = restored.domain_connection(3)
    assert ring is not None
    restored.receive(ring, encode_message(Op.READ, 77, 0, b"/x\0")[10:])
    g = EngineClient(restored, ring)
    g.drain()
    g.replies.clear()
    assert g.error(Op.TRANSACTION_END, "T", tx=1) == "EAGAIN"


def test_fresh_engine_records() -> None:
    records = list(state_records(Engine()))
    nodes = [r for r in records if isinstance(r, NodeData)]
    assert [n.path for n in nodes] == [
        "/",
        "/tool",
        "/tool/xenstored",
        "@releaseDomain",
        "@introduceDomain",
    ]


def test_restored_tree_is_consistent(dom0: EngineClient, guest: Guest) -> None:
    build_state(dom0, guest)
    restored = restore_engine(state_records(dom0.engine))
    assert restored.tree.check() == []
    assert restored.tree.owned == dom0.engine.tree.owned
    assert restored.tree.owned_memory == dom0.engine.tree.owned_memory
