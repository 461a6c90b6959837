"""Watch registration and firing: initial event, subtree, removal, depth, perms, specials."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.store.connection import OUTPUT_LIMIT
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def test_initial_event_comes_after_ok(dom0: EngineClient) -> None:
    req = dom0.send(Op.WATCH, "/w", "tok")
    dom0.drain()
    assert [(m.req_id, m.payload) for m in dom0.replies] == [(req, b"OK\0")]
    assert dom0.events == [("/w", "tok")]


def test_fires_on_node_and_subtree_only(dom0: EngineClient) -> None:
    dom0.ok(Op.WATCH, "/w", "t")
    dom0.take_events()
    dom0.write("/w/a/b", "1")
    dom0.write("/other", "1")
    dom0.write("/wx", "1")
    dom0.write("/w", "2")
    assert dom0.take_events() == [("/w/a/b", "t"), ("/w", "t")]


def test_events_of_a_request_precede_its_reply(dom0: EngineClient) -> None:
    dom0.ok(Op.WATCH, "/e", "t")
    dom0.take_events()
    dom0.send(Op.WRITE, "/e", value=b"1")
    messages = []
    while chunk := dom0.conn.output_chunk():
        messages.append(chunk[:4])
        dom0.conn.output_sent(len(chunk))
    assert messages == [bytes([Op.WATCH_EVENT, 0, 0, 0]), bytes([Op.WRITE, 0, 0, 0])]


def test_recursive_rm_fires_children_first_exact_then_root(dom0: EngineClient) -> None:
    dom0.write("/r/a/b", "")
    dom0.write("/r/c", "")
    dom0.ok(Op.WATCH, "/r/a/b", "deep")
    dom0.ok(Op.WATCH, "/r", "top")
    dom0.ok(Op.WATCH, "/r/a/b/below", "below")
    dom0.take_events()
    dom0.ok(Op.RM, "/r")
    # Each deleted descendant reaches only watches placed exactly on it; the root reaches
    # watches on it and its ancestors.
    assert dom0.take_events() == [("/r/a/b", "deep"), ("/r", "top")]


def test_failed_request_fires_nothing(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/f", "")
    dom0.ok(Op.WATCH, "/f", "t")
    dom0.take_events()
    g = guest(1)
    assert g.error(Op.WRITE, "/f", value=b"x") == "EACCES"
    assert dom0.error(Op.RM, "/f/x/y") == "ENOENT"
    assert dom0.take_events() == []


def test_depth_limits_matching(dom0: EngineClient) -> None:
    dom0.ok(Op.WATCH, "/d", "d0", "0")
    dom0.ok(Op.WATCH, "/d", "d1", "1")
    dom0.take_events()
    dom0.write("/d", "")
    dom0.write("/d/a", "")
    dom0.write("/d/a/b", "")
    assert dom0.take_events() == [("/d", "d0"), ("/d", "d1"), ("/d/a", "d1")]


def test_duplicate_and_unknown_watches(dom0: EngineClient) -> None:
    dom0.ok(Op.WATCH, "/u", "t")
    assert dom0.error(Op.WATCH, "/u", "t") == "EEXIST"
    assert dom0.ok(Op.WATCH, "/u", "t2") == b"OK\0"
    assert dom0.ok(Op.UNWATCH, "/u", "t") == b"OK\0"
    assert dom0.error(Op.UNWATCH, "/u", "t") == "ENOENT"
    assert dom0.error(Op.WATCH, "/u") == "EINVAL"
    assert dom0.error(Op.WATCH, "/u/", "t") == "EINVAL"


def test_relative_watch_reports_relative_paths(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/local/domain/3", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/3", "n3")
    g = guest(3)
    g.ok(Op.WATCH, "device", "rel")
    assert g.take_events() == [("device", "rel")]
    dom0.write("/local/domain/3/device/vif", "1")
    assert g.take_events() == [("device/vif", "rel")]
    assert g.conn.watches[0].path == "device"


def test_events_only_to_watchers_that_may_read(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/priv", "")
    dom0.ok(Op.SET_PERMS, "/priv", "n0")
    g = guest(2)
    g.ok(Op.WATCH, "/priv", "t")
    g.take_events()
    dom0.write("/priv/x", "1")
    assert g.take_events() == []
    dom0.ok(Op.SET_PERMS, "/priv/x", "n0", "r2")
    assert g.take_events() == [("/priv/x", "t")]


def test_identical_queued_event_is_not_repeated(dom0: EngineClient) -> None:
    watcher = EngineClient(dom0.engine, dom0.engine.connect_socket(fd=9))
    watcher.send(Op.WATCH, "/q", "t")
    dom0.write("/q", "1")
    dom0.write("/q", "2")
    # The initial event "/q t" is still queued to the watcher, so both writes add nothing.
    assert watcher.take_events() == [("/q", "t")]
    dom0.write("/q", "3")
    assert watcher.take_events() == [("/q", "t")]


def test_special_watches(dom0: EngineClient, guest: Guest) -> None:
    dom0.ok(Op.WATCH, "@introduceDomain", "in")
    dom0.ok(Op.WATCH, "@releaseDomain", "out")
    dom0.ok(Op.WATCH, "@releaseDomain", "outd", "1")
    dom0.ok(Op.WATCH, "@releaseDomain/4", "four")
    dom0.ok(Op.WATCH, "@releaseDomain/5", "five")
    dom0.take_events()
    guest(4)
    dom0.ok(Op.RELEASE, "4")
    assert dom0.take_events() == [
        ("@introduceDomain", "in"),
        ("@releaseDomain", "out"),
        ("@releaseDomain/4", "outd"),
        ("@releaseDomain/4", "four"),
    ]


def test_special_watch_events_need_read_on_the_special_node(
    dom0: EngineClient, guest: Guest
) -> None:
    g = guest(2)
    g.ok(Op.WATCH, "@introduceDomain", "in")
    g.take_events()
    guest(3)
    assert g.take_events() == []
    dom0.ok(Op.SET_PERMS, "@introduceDomain", "n0", "r2")
    guest(5)
    assert g.take_events() == [("@introduceDomain", "in")]


def test_reset_watches_drops_watches_and_transactions(dom0: EngineClient) -> None:
    dom0.ok(Op.WATCH, "/x", "t")
    tx = dom0.start()
    assert dom0.ok(Op.RESET_WATCHES, "") == b"OK\0"
    dom0.take_events()
    dom0.write("/x", "1")
    assert dom0.take_events() == []
    assert dom0.error(Op.READ, "/x", tx=tx) == "ENOENT"


def test_events_for_a_full_output_queue_are_dropped(dom0: EngineClient) -> None:
    other = EngineClient(dom0.engine, dom0.engine.connect_socket(fd=9))
    token = "t" * 2000
    other.ok(Op.WATCH, "/flood", token)
    other.take_events()
    for n in range(OUTPUT_LIMIT // 2000 + 50):
        dom0.write(f"/flood/{n}", "")
    assert OUTPUT_LIMIT <= other.conn.output_size < OUTPUT_LIMIT + 2100
    assert other.conn.dropped_events > 0
    # A reader that catches up gets events again.
    other.take_events()
    dom0.write("/flood/again", "")
    assert other.take_events() == [("/flood/again", token)]
