"""Transactions: isolation, commit/abort, C's EAGAIN rule, ids and limits."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def other_client(dom0: EngineClient) -> EngineClient:
    return EngineClient(dom0.engine, dom0.engine.connect_socket(fd=11))


def test_ids_start_at_one_and_increase(dom0: EngineClient) -> None:
    assert dom0.start() == 1
    assert dom0.start() == 2


def test_isolated_view_and_commit(dom0: EngineClient) -> None:
    dom0.write("/t/a", "old")
    tx = dom0.start()
    dom0.write("/t/a", "new", tx=tx)
    dom0.write("/t/b/c", "made", tx=tx)
    assert dom0.read("/t/a", tx=tx) == b"new"
    assert dom0.ok(Op.DIRECTORY, "/t", tx=tx) == b"a\0b\0"
    assert dom0.read("/t/a") == b"old"
    assert dom0.error(Op.READ, "/t/b") == "ENOENT"
    assert dom0.ok(Op.TRANSACTION_END, "T", tx=tx) == b"OK\0"
    assert dom0.read("/t/a") == b"new"
    assert dom0.read("/t/b/c") == b"made"
    assert dom0.error(Op.READ, "/t/a", tx=tx) == "ENOENT"


def test_abort_discards(dom0: EngineClient) -> None:
    tx = dom0.start()
    dom0.write("/ab", "x", tx=tx)
    assert dom0.ok(Op.TRANSACTION_END, "F", tx=tx) == b"OK\0"
    assert dom0.error(Op.READ, "/ab") == "ENOENT"


def test_conflict_on_a_node_read_then_changed(dom0: EngineClient) -> None:
    other = other_client(dom0)
    dom0.write("/c/x", "1")
    tx = dom0.start()
    assert dom0.read("/c/x", tx=tx) == b"1"
    other.write("/c/x", "2")
    assert dom0.read("/c/x", tx=tx) == b"1"
    dom0.write("/c/y", "3", tx=tx)
    assert dom0.error(Op.TRANSACTION_END, "T", tx=tx) == "EAGAIN"
    assert dom0.error(Op.READ, "/c/y") == "ENOENT"


def test_conflict_when_a_node_found_missing_appears(dom0: EngineClient) -> None:
    other = other_client(dom0)
    tx = dom0.start()
    assert dom0.error(Op.READ, "/late", tx=tx) == "ENOENT"
    other.write("/late", "")
    dom0.write("/elsewhere", "", tx=tx)
    assert dom0.error(Op.TRANSACTION_END, "T", tx=tx) == "EAGAIN"


def test_unrelated_changes_do_not_conflict(dom0: EngineClient) -> None:
    other = other_client(dom0)
    dom0.write("/u/a", "")
    dom0.write("/v", "")
    tx = dom0.start()
    dom0.write("/u/a", "mine", tx=tx)
    other.write("/v", "theirs")
    assert dom0.ok(Op.TRANSACTION_END, "T", tx=tx) == b"OK\0"


def test_sibling_creation_conflicts_through_the_parent(dom0: EngineClient) -> None:
    other = other_client(dom0)
    dom0.write("/p", "")
    tx = dom0.start()
    dom0.write("/p/mine", "", tx=tx)
    other.write("/p/theirs", "")
    assert dom0.error(Op.TRANSACTION_END, "T", tx=tx) == "EAGAIN"


def test_watches_fire_at_commit_only(dom0: EngineClient) -> None:
    watcher = other_client(dom0)
    watcher.ok(Op.WATCH, "/wt", "t")
    watcher.take_events()
    tx = dom0.start()
    dom0.write("/wt/a", "1", tx=tx)
    assert watcher.take_events() == []
    dom0.ok(Op.TRANSACTION_END, "T", tx=tx)
    assert watcher.take_events() == [("/wt/a", "t")]
    tx = dom0.start()
    dom0.write("/wt/b", "1", tx=tx)
    dom0.ok(Op.TRANSACTION_END, "F", tx=tx)
    assert watcher.take_events() == []


def test_rm_inside_a_transaction(dom0: EngineClient) -> None:
    dom0.write("/rt/a/b", "")
    tx = dom0.start()
    dom0.ok(Op.RM, "/rt/a", tx=tx)
    assert dom0.error(Op.READ, "/rt/a/b", tx=tx) == "ENOENT"
    assert dom0.read("/rt/a/b") == b""
    dom0.ok(Op.TRANSACTION_END, "T", tx=tx)
    assert dom0.ok(Op.DIRECTORY, "/rt") == b""


def test_errors(dom0: EngineClient) -> None:
    assert dom0.error(Op.READ, "/", tx=99) == "ENOENT"
    assert dom0.error(Op.TRANSACTION_END, "T") == "ENOENT"
    tx = dom0.start()
    assert dom0.error(Op.TRANSACTION_START, "", tx=tx) == "EBUSY"
    assert dom0.error(Op.TRANSACTION_START, "", tx=tx + 7) == "ENOENT"
    assert dom0.error(Op.TRANSACTION_END, "X", tx=tx) == "EINVAL"
    assert dom0.ok(Op.TRANSACTION_END, "T", tx=tx) == b"OK\0"


def test_watch_ignores_tx_id(dom0: EngineClient) -> None:
    assert dom0.call(Op.WATCH, "/i", "t", tx=42).op == Op.WATCH


def test_end_checks_its_argument_before_the_transaction(dom0: EngineClient) -> None:
    assert dom0.error(Op.TRANSACTION_END, "X") == "EINVAL"
    assert dom0.error(Op.TRANSACTION_END) == "EINVAL"


def test_failed_write_inside_a_transaction_fails_the_commit(
    dom0: EngineClient, guest: Guest
) -> None:
    dom0.write("/local/domain/2", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/2", "n2")
    g = guest(2)
    tx = g.start()
    assert g.error(Op.WRITE, "big", value=b"x" * 3000, tx=tx) == "ENOSPC"
    g.write("small", "ok", tx=tx)
    assert g.error(Op.TRANSACTION_END, "T", tx=tx) == "ENOMEM"
    assert g.error(Op.READ, "small") == "ENOENT"


def test_permission_change_in_a_transaction_reaches_the_watcher_losing_access(
    dom0: EngineClient, guest: Guest
) -> None:
    dom0.write("/pv", "")
    dom0.ok(Op.SET_PERMS, "/pv", "n0", "r3")
    g = guest(3)
    g.ok(Op.WATCH, "/pv", "t")
    g.take_events()
    tx = dom0.start()
    dom0.ok(Op.SET_PERMS, "/pv", "n0", tx=tx)
    assert g.take_events() == []
    dom0.ok(Op.TRANSACTION_END, "T", tx=tx)
    assert g.take_events() == [("/pv", "t")]
    assert g.error(Op.READ, "/pv") == "EACCES"


def test_commit_fires_once_per_node_in_the_order_first_touched(dom0: EngineClient) -> None:
    watcher = other_client(dom0)
    dom0.write("/o/r/a/b", "")
    watcher.ok(Op.WATCH, "/o", "t")
    watcher.ok(Op.WATCH, "/o/r/a/b", "deep")
    watcher.take_events()
    tx = dom0.start()
    dom0.write("/o/x", "1", tx=tx)
    dom0.write("/o/x", "2", tx=tx)
    dom0.ok(Op.RM, "/o/r", tx=tx)
    dom0.ok(Op.TRANSACTION_END, "T", tx=tx)
    # C keeps one event per node and fires them in the order the transaction first
    # touched the nodes: /o/x, then /o/r before its children (unlike the order an RM
    # outside a transaction reports them).
    assert watcher.take_events() == [("/o/x", "t"), ("/o/r", "t"), ("/o/r/a/b", "deep")]
