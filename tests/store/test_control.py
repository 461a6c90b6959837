"""XS_CONTROL: print, check, quota, quota-soft, help; privileged only."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def text(reply: bytes) -> str:
    assert reply.endswith(b"\0")
    return reply[:-1].decode()


def test_simple_commands(dom0: EngineClient) -> None:
    assert dom0.ok(Op.CONTROL, "check") == b"OK\0"
    assert dom0.ok(Op.CONTROL, "print", "hello") == b"OK\0"
    assert "hello" in dom0.engine.log
    assert dom0.error(Op.CONTROL, "bogus") == "EINVAL"
    assert dom0.error(Op.CONTROL) == "EINVAL"


def test_help_lists_the_commands(dom0: EngineClient) -> None:
    listed = [line.split("\t")[0] for line in text(dom0.ok(Op.CONTROL, "help")).splitlines()]
    for command in ("check", "print", "quota", "quota-soft", "help"):
        assert command in listed


def test_quota_show_and_set(dom0: EngineClient) -> None:
    shown = text(dom0.ok(Op.CONTROL, "quota"))
    assert shown.startswith("Quota settings:\n")
    assert "nodes            :     1000 Nodes per domain" in shown
    assert "soft" not in shown
    assert dom0.ok(Op.CONTROL, "quota", "set", "nodes", "77") == b"OK\0"
    assert dom0.ok(Op.GET_QUOTA, "nodes") == b"77\0"
    assert dom0.error(Op.CONTROL, "quota", "set", "nosuch", "1") == "EINVAL"
    soft = text(dom0.ok(Op.CONTROL, "quota-soft"))
    assert "memory           :  2097152" in soft
    assert dom0.ok(Op.CONTROL, "quota-soft", "set", "memory", "1000") == b"OK\0"
    assert dom0.ok(Op.GET_QUOTA, "soft-memory") == b"1000\0"


def test_domain_usage(dom0: EngineClient, guest: Guest) -> None:
    g = guest(3)
    g.ok(Op.WATCH, "/x", "t")
    usage = text(dom0.ok(Op.CONTROL, "quota", "3"))
    assert usage.splitlines()[0] == "Domain 3:"
    assert "watches          :        1 (max        1)" in usage
    assert dom0.error(Op.CONTROL, "quota", "77") == "ENOENT"
    assert dom0.error(Op.CONTROL, "quota", "set", "nodes", "0") == "EINVAL"
    assert dom0.error(Op.CONTROL, "quota", "set") == "EINVAL"


def test_guests_may_not_control(guest: Guest) -> None:
    assert guest(2).error(Op.CONTROL, "check") == "EACCES"


def test_log_switches(dom0: EngineClient) -> None:
    listing = text(dom0.ok(Op.CONTROL, "log")).splitlines()
    assert listing[0] == "Log switch settings:"
    assert "obj     : on" in listing
    assert "tdb     : off" in listing
    assert dom0.ok(Op.CONTROL, "log", "+tdb") == b"OK\0"
    assert "tdb     : on" in text(dom0.ok(Op.CONTROL, "log"))
    assert dom0.ok(Op.CONTROL, "log", "off") == b"OK\0"
    assert dom0.error(Op.CONTROL, "log", "+nope") == "EINVAL"
