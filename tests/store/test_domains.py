"""INTRODUCE, RELEASE, RESUME, IS_DOMAIN_INTRODUCED, SET_TARGET, features."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def test_introduce_and_query(dom0: EngineClient) -> None:
    assert dom0.ok(Op.IS_DOMAIN_INTRODUCED, "3") == b"F\0"
    assert dom0.ok(Op.INTRODUCE, "3", "12345", "7") == b"OK\0"
    assert dom0.ok(Op.IS_DOMAIN_INTRODUCED, "3") == b"T\0"
    assert dom0.ok(Op.IS_DOMAIN_INTRODUCED, "32752") == b"T\0"
    domain = dom0.engine.domains[3]
    assert domain.remote_port == 7
    assert domain.local_port > 0


def test_introduce_errors(dom0: EngineClient, guest: Guest) -> None:
    assert dom0.error(Op.INTRODUCE, "3", "1") == "EINVAL"
    assert dom0.error(Op.INTRODUCE, "x", "1", "2") == "EINVAL"
    assert dom0.error(Op.INTRODUCE, "32752", "1", "2") == "EINVAL"
    g = guest(4)
    assert g.error(Op.INTRODUCE, "5", "1", "2") == "EACCES"
    assert g.error(Op.IS_DOMAIN_INTRODUCED, "4") == "EACCES"
    assert g.error(Op.RELEASE, "4") == "EACCES"


def test_reintroduce_resets_the_connection(dom0: EngineClient, guest: Guest) -> None:
    g = guest(3)
    g.ok(Op.WATCH, "/x", "t")
    g.start()
    dom0.ok(Op.INTRODUCE, "3", "1", "99")
    assert g.conn.watches == []
    assert g.conn.transactions == {}
    assert dom0.engine.domains[3].remote_port == 99


def test_release_and_resume(dom0: EngineClient, guest: Guest) -> None:
    guest(2)
    assert dom0.ok(Op.RESUME, "2") == b"OK\0"
    assert dom0.ok(Op.RELEASE, "2") == b"OK\0"
    assert dom0.ok(Op.IS_DOMAIN_INTRODUCED, "2") == b"F\0"
    assert dom0.error(Op.RELEASE, "2") == "ENOENT"
    assert dom0.error(Op.RESUME, "2") == "ENOENT"
    assert dom0.error(Op.RELEASE, "0") == "EINVAL"
    assert dom0.engine.domain_connection(2) is None


def test_release_removes_the_domains_nodes(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/local/domain/5", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/5", "n5")
    g = guest(5)
    g.write("device/vif", "1")
    dom0.ok(Op.WATCH, "/local/domain/5", "t")
    dom0.take_events()
    dom0.ok(Op.RELEASE, "5")
    assert dom0.ok(Op.DIRECTORY, "/local/domain") == b""
    assert ("/local/domain/5", "t") in dom0.take_events()


def test_the_4_17_crash_sequence_is_harmless(dom0: EngineClient, guest: Guest) -> None:
    guest(2)
    guest(4)
    dom0.ok(Op.SET_TARGET, "2", "4")
    dom0.ok(Op.RELEASE, "4")
    assert dom0.error(Op.RELEASE, "4") == "ENOENT"
    assert dom0.ok(Op.RELEASE, "2") == b"OK\0"
    assert dom0.read("/tool/xenstored") == b""


def test_guest_home_for_relative_paths(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/local/domain/3", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/3", "n3")
    g = guest(3)
    g.write("name", "vm3")
    assert dom0.read("/local/domain/3/name") == b"vm3"


def test_features(dom0: EngineClient, guest: Guest) -> None:
    assert dom0.ok(Op.GET_FEATURE, "") == b"14\0"
    assert dom0.ok(Op.SET_FEATURE, "6", "2") == b"OK\0"
    assert dom0.ok(Op.GET_FEATURE, "6") == b"2\0"
    assert dom0.error(Op.SET_FEATURE, "6", "1") == "EINVAL"
    g = guest(6)
    assert g.ok(Op.GET_FEATURE, "") == b"2\0"
    # Without WATCHDEPTH a guest may not give a depth.
    assert g.error(Op.WATCH, "/a", "t", "1") == "EINVAL"
    assert dom0.error(Op.SET_FEATURE, "6", "4") == "EBUSY"
    assert g.error(Op.GET_FEATURE, "6") == "EACCES"
