"""store/migration.py: one domain's stream out of one engine and into another (no I/O)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import (
    ConnectionData,
    GlobalData,
    Header,
    NodeData,
    Permission,
    Record,
    RingSpec,
    SocketSpec,
    WatchDataExtended,
)
from xsmig_daemon.store import Engine
from xsmig_daemon.store.image_state import state_records
from xsmig_daemon.store.migration import (
    ImportRefusedError,
    apply_import,
    domain_records,
    plan_import,
)
from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def through_bytes(records: list[Record]) -> list[Record]:
    """Encode and decode + validate as a migration stream, as a real import would."""
    data = b"".join(encode_image(records, Header(2, False)))
    return [item.record for item in read_image([data], migration=True)]


def source_state(dom0: EngineClient, guest: Guest) -> EngineClient:
    dom0.ok(Op.MKDIR, "/local/domain")
    dom7 = guest(7)
    dom0.write("/local/domain/7/name", "web")
    dom0.ok(Op.SET_PERMS, "/local/domain/7", "n0", "r7")
    dom0.ok(Op.SET_PERMS, "/local/domain/7/name", "n0", "r7")
    dom0.ok(Op.MKDIR, "/local/domain/7/data")
    dom0.ok(Op.SET_PERMS, "/local/domain/7/data", "b7", "r0")
    dom7.write("data/key", "v1")
    dom7.write("data/sub/leaf", "deep")
    dom0.write("/vm/7", "")
    dom0.ok(Op.SET_PERMS, "/vm/7", "b7")
    return dom7


def test_export_holds_exactly_the_domain(engine: Engine, dom0: EngineClient, guest: Guest) -> None:
    dom7 = source_state(dom0, guest)
    guest(3)
    dom0.write("/local/domain/3/name", "other")
    dom7.ok(Op.WATCH, "data", "tok")
    dom7.ok(Op.WATCH, "/local/domain/7/data", "deep", "1")
    records = list(domain_records(engine, 7))
    paths = [r.path for r in records if isinstance(r, NodeData) and r.committed]
    assert paths == [
        "/local/domain/7",
        "/local/domain/7/name",
        "/local/domain/7/data",
        "/local/domain/7/data/key",
        "/local/domain/7/data/sub",
        "/local/domain/7/data/sub/leaf",
        "/vm/7",
    ]
    conns = [r for r in records if isinstance(r, ConnectionData)]
    assert [c.spec for c in conns] == [RingSpec(7, 0x7FF4, conns[0].spec.evtchn)]  # type: ignore[union-attr]
    assert any(isinstance(r, WatchDataExtended) and r.depth == 1 for r in records)


def test_import_remaps_and_fires(engine: Engine, dom0: EngineClient, guest: Guest) -> None:
    dom7 = source_state(dom0, guest)
    dom7.ok(Op.WATCH, "data", "rel")
    dom7.ok(Op.WATCH, "/local/domain/7/data", "abs", "1")
    dom7.take_events()
    dom7.send(Op.READ, "name")  # a reply the guest has not read
    half = encode_message(Op.READ, 99, 0, b"data/key\0")
    engine.receive(dom7.conn, half[:10])  # half a request
    records = through_bytes(list(domain_records(engine, 7)))

    dest = Engine()
    watcher = EngineClient(dest, dest.connect_socket(fd=9))
    watcher.ok(Op.WATCH, "/local", "all")
    watcher.ok(Op.WATCH, "@introduceDomain", "intro")
    watcher.take_events()
    apply_import(dest, plan_import(dest, records, 12))

    assert dest.tree.get("/local/domain/12/data/key").value == b"v1"  # type: ignore[union-attr]
    assert dest.tree.get("/local/domain/12").perms == (  # type: ignore[union-attr]
        Permission("n", 0),
        Permission("r", 12),
    )
    assert dest.tree.get("/vm/7").perms == (Permission("b", 12),)  # type: ignore[union-attr]
    assert dest.tree.check() == []
    events = watcher.take_events()
    assert ("@introduceDomain", "intro") in events
    assert ("/local/domain/12/data/sub/leaf", "all") in events
    assert ("/local", "all") in events  # created as a privileged write creates ancestors

    conn = dest.domain_connection(12)
    assert conn is not None
    moved = EngineClient(dest, conn)
    moved.drain()
    assert [r.payload for r in moved.replies] == [b"web"]
    assert moved.events == []  # nothing fired for the guest's own imported nodes
    moved.replies.clear()
    dest.receive(conn, half[10:])
    moved.drain()
    assert [(r.req_id, r.payload) for r in moved.replies] == [(99, b"v1")]
    dom0_dest = EngineClient(dest, dest.connect_socket(fd=10))
    dom0_dest.write("/local/domain/12/data/sub/x", "1")
    assert sorted(moved.take_events()) == [("data/sub/x", "rel")]
    dom0_dest.write("/local/domain/12/data/y", "1")
    assert sorted(moved.take_events()) == [("/local/domain/12/data/y", "abs"), ("data/y", "rel")]


def test_transactions_commit_or_conflict_as_at_the_source(
    engine: Engine, dom0: EngineClient, guest: Guest
) -> None:
    dom7 = source_state(dom0, guest)
    clean = dom7.start()
    dom7.read("data/key", tx=clean)
    dom7.write("data/new", "x", tx=clean)
    stale = dom7.start()
    dom7.read("name", tx=stale)
    dom7.write("data/other", "y", tx=stale)
    dom0.write("/local/domain/7/name", "changed")  # stale now conflicts at the source
    records = through_bytes(list(domain_records(engine, 7)))
    dest = Engine()
    apply_import(dest, plan_import(dest, records, 12))
    conn = dest.domain_connection(12)
    assert conn is not None
    moved = EngineClient(dest, conn)
    assert moved.error(Op.TRANSACTION_END, "T", tx=stale) == "EAGAIN"
    assert moved.ok(Op.TRANSACTION_END, "T", tx=clean) == b"OK\0"
    assert dest.tree.get("/local/domain/12/data/new").value == b"x"  # type: ignore[union-attr]


def unchanged(dest: Engine) -> Callable[[], None]:
    before = list(state_records(dest))

    def check() -> None:
        assert list(state_records(dest)) == before

    return check


@pytest.mark.parametrize(
    ("setup", "cause"),
    [
        (lambda d, c: c.ok(Op.INTRODUCE, "12", "1", "5"), "domain 12 is already introduced"),
        (lambda d, c: c.write("/local/domain/12/name", "x"), "node /local/domain/12 exists"),
        (lambda d, c: c.ok(Op.SET_QUOTA, "nodes", "3"), "quota refused: domain 12: it would own"),
    ],
)
def test_conflicts_change_nothing(
    engine: Engine,
    dom0: EngineClient,
    guest: Guest,
    setup: Callable[[Engine, EngineClient], object],
    cause: str,
) -> None:
    source_state(dom0, guest)
    records = through_bytes(list(domain_records(engine, 7)))
    dest = Engine()
    admin = EngineClient(dest, dest.connect_socket(fd=9))
    setup(dest, admin)
    check = unchanged(dest)
    with pytest.raises(ImportRefusedError, match=cause):
        plan_import(dest, records, 12)
    check()


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        (GlobalData(3, 4), "record 1: GlobalData does not belong"),
        (ConnectionData(5, SocketSpec(7)), "a socket connection"),
        (ConnectionData(5, RingSpec(8)), "a second connection"),
    ],
)
def test_bad_streams_are_refused(
    engine: Engine, dom0: EngineClient, guest: Guest, extra: Record, cause: str
) -> None:
    source_state(dom0, guest)
    records = list(domain_records(engine, 7))
    records = [extra, *records] if isinstance(extra, GlobalData) else [*records[:1], extra]
    dest = Engine()
    check = unchanged(dest)
    with pytest.raises(ImportRefusedError, match=cause):
        plan_import(dest, records, 12)
    check()


def test_release_at_the_source(engine: Engine, dom0: EngineClient, guest: Guest) -> None:
    source_state(dom0, guest)
    dom0.ok(Op.WATCH, "@releaseDomain", "rel")
    dom0.take_events()
    engine.release(7)
    assert dom0.take_events() == [("@releaseDomain", "rel")]
    assert engine.domain_connection(7) is None
    assert engine.tree.get("/local/domain/7/data") is None  # owned by 7: removed
    assert engine.tree.get("/local/domain/7/name") is not None  # dom0's: the toolstack's
