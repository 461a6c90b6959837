"""The pure live-update session: C's syntax, replies and timing (store/liveupdate.py)."""

from __future__ import annotations

import pytest

from xsmig_daemon.image.records import ConnType
from xsmig_daemon.store.connection import Connection
from xsmig_daemon.store.errors import XsError
from xsmig_daemon.store.liveupdate import (
    Abort,
    BinaryStatus,
    LiveUpdateSession,
    OpenTransactions,
    PendingStart,
    SetBinary,
    SetCmdline,
    Start,
    SuccessorKind,
    Verdict,
    decide,
    exec_argv,
    ok_reply,
    parse_command,
)
from xsmig_daemon.store.transaction import Transaction
from xsmig_daemon.wire.framing import Message
from xsmig_daemon.wire.ops import Op

REQUEST = Message(Op.CONTROL, 9, 0, b"live-update\0-s\0")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-f", "/x"], SetBinary("/x")),
        (["-c", "a b"], SetCmdline("a b")),
        (["-a"], Abort()),
        (["-s"], Start(0, False, 2)),
        (["-s", "-t", "60", "-F"], Start(60, True, 2)),
        (["-s", "-F", "-t", "7x", "-v", "1"], Start(7, True, 1)),
    ],
)
def test_parse(args: list[str], expected: object) -> None:
    assert parse_command(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-a", "x"],
        ["-c"],
        ["-f"],
        ["-f", "a", "b"],
        ["-s", "-t"],
        ["-s", "-x"],
        ["-q"],
        ["-s", "-F", "-F", "-F", "-F", "-F", "-F"],
    ],
)
def test_parse_rejects(args: list[str]) -> None:
    with pytest.raises(XsError) as info:
        parse_command(args)
    assert info.value.name == "EINVAL"


def test_session_replies() -> None:
    status = {"/ok": BinaryStatus.OK, "/plain": BinaryStatus.NOT_EXECUTABLE}
    lu = LiveUpdateSession(lambda path: status.get(path, BinaryStatus.MISSING))
    a, b = Connection(ConnType.SOCKET, fd=3), Connection(ConnType.SOCKET, fd=4)
    assert lu.control(a, REQUEST, ["-f", "/nope"], 0) == "File not accessible."
    assert lu.control(a, REQUEST, ["-f", "/plain"], 0) == "File not executable."
    assert lu.control(a, REQUEST, ["-s"], 0) == "Not in live-update session."
    assert lu.control(a, REQUEST, ["-f", "/ok"], 0) == "OK"
    assert lu.control(b, REQUEST, ["-f", "/ok"], 0) == "live-update session already active."
    assert lu.control(b, REQUEST, ["-c", "x"], 0) == "Not in live-update session."
    assert lu.control(a, REQUEST, ["-c", "x -y"], 0) == "OK"
    assert lu.control(a, REQUEST, ["-s", "-v", "0"], 0) == (
        "Migration stream version not supported."
    )
    assert lu.control(a, REQUEST, ["-s", "-t", "3"], 5.0) is None
    assert lu.session is not None and lu.session.pending is not None
    assert lu.session.pending.started_at == 5.0
    assert lu.control(b, REQUEST, ["-a"], 6) == "OK"
    assert lu.cancelled is not None and lu.cancelled.request is REQUEST
    assert lu.control(a, REQUEST, ["-a"], 6) == "No live-update session active."


def _pending(timeout: int, force: bool) -> PendingStart:
    return PendingStart(REQUEST, timeout, force, 2, 100.0)


def test_mock_successor_never_waits() -> None:
    busy = [OpenTransactions(0, 0.0)]
    assert decide(_pending(0, False), 100, SuccessorKind.MOCK, busy).verdict is Verdict.GO


def test_xen417_timing_follows_current_xen() -> None:
    kind = SuccessorKind.XEN_417
    young = [OpenTransactions(3, 99.0)]
    assert decide(_pending(10, False), 100, kind, []).verdict is Verdict.GO
    waiting = decide(_pending(10, False), 101, kind, young)
    assert (waiting.verdict, waiting.deadline) == (Verdict.WAIT, 110.0)
    failed = decide(_pending(10, False), 110, kind, young)
    assert (failed.verdict, failed.text) == (
        Verdict.FAIL,
        "Domains with long running transactions:\nDomain 3: 11 s",
    )
    overlapping = decide(_pending(10, False), 110, kind, [OpenTransactions(3, 105.0)])
    assert (overlapping.verdict, overlapping.text) == (Verdict.FAIL, "Overlapping transactions")
    assert decide(_pending(10, True), 110, kind, young).verdict is Verdict.GO
    # -F with every transaction already older than the timeout: go at once (4.17's sign bug
    # would keep waiting here).
    old = [OpenTransactions(3, 50.0)]
    assert decide(_pending(10, True), 100, kind, old).verdict is Verdict.GO
    assert decide(_pending(0, False), 100, kind, young).verdict is Verdict.FAIL


def test_xen417_losses_refuse_unless_forced() -> None:
    kind, losses = SuccessorKind.XEN_417, ["1 watch depth limit (/a token t depth 1 on conn 2)"]
    refused = decide(_pending(10, False), 100, kind, [], losses)
    assert refused.verdict is Verdict.FAIL
    assert refused.text == "Live update would lose (use -F to force):\n" + losses[0]
    assert decide(_pending(10, True), 100, kind, [], losses).verdict is Verdict.GO


def test_transaction_age_counts_from_first_sight() -> None:
    lu = LiveUpdateSession(lambda path: BinaryStatus.OK)
    conn = Connection(ConnType.SOCKET, fd=3)
    conn.transactions[1] = Transaction(1)
    assert lu.observe([conn], 10.0) == [OpenTransactions(0, 10.0)]
    assert lu.observe([conn], 12.0) == [OpenTransactions(0, 10.0)]
    conn.transactions.clear()
    assert lu.observe([conn], 13.0) == []


def test_exec_argv_and_ok_reply() -> None:
    assert exec_argv("/new", None, ["--socket", "/s"]) == ["/new", "--socket", "/s", "-U"]
    assert exec_argv("/new", None, ["-N", "-U"]) == ["/new", "-N", "-U"]
    assert exec_argv("/new", "  -N\t-T /t ", ["x"]) == ["/new", "-N", "-T", "/t", "-U"]
    assert ok_reply(REQUEST) == bytes.fromhex("00000000090000000000000003000000") + b"OK\0"


def test_each_real_successor_kind_finds_its_profile_by_name() -> None:
    assert SuccessorKind.MOCK.profile is None
    for kind in SuccessorKind:
        if kind is not SuccessorKind.MOCK:
            profile = kind.profile
            assert profile is not None and profile.name == kind.value
            assert profile.is_c_loader
