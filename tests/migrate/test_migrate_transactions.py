"""Open transactions across ``xsmig migrate`` end exactly as they would have at the source.

The referee is the source's own behaviour without a migration: a third mock runs the same
scenario (same domain, same transactions, the same changes by dom0 at the same points) and
is never migrated. Each transaction exercises one kind of conflict the daemon detects; the
migrated guest must get, for every one, the commit answer the referee's guest gets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from miglib import build_domain, xsmig
from peerlib import MockDaemon, start_mockd
from wireclient import WireClient, ok, write

from xsmig_daemon.wire.ops import Op

#: Nodes of the scenario under the domain's home (dom0 writes them; the guest owns ``data``).
SETUP = (
    "data/none/x",
    "data/written/x",
    "data/read/x",
    "data/removed/x",
    "data/created/own",
    "data/children/a",
    "data/recreated/own",
    "data/after/x",
    "data/failed/x",
)
#: What a daemon that is not migrated answers (C's conflict rule), so that the referee
#: comparison below cannot pass vacuously.
EXPECTED = {
    "none": "OK",
    "written": "EAGAIN",  # a node the transaction wrote, changed by dom0
    "read": "EAGAIN",  # a node it read, changed
    "removed": "EAGAIN",  # a node it wrote, removed
    "created": "EAGAIN",  # a node it found missing, created
    "children": "EAGAIN",  # a directory it listed, given a child
    # a node it found missing, created, then removed again after the migration point: the
    # directory it looked in has changed for good
    "recreated": "EAGAIN",
    "after": "EAGAIN",  # a node it wrote, changed after the migration point
    "failed": "ENOMEM",  # an earlier error in the transaction
}


@pytest.fixture
def three_mocks() -> Iterator[tuple[MockDaemon, MockDaemon, MockDaemon]]:
    started: list[MockDaemon] = []
    try:
        for _ in range(3):
            started.append(start_mockd())
        yield started[0], started[1], started[2]
    finally:
        for daemon in reversed(started):
            daemon.stop()


def open_transactions(admin: WireClient, guest: WireClient, domid: int) -> dict[str, int]:
    """Before the migration point: the nodes, one transaction per kind, dom0's changes."""
    home = f"/local/domain/{domid}"
    for path in SETUP:
        write(admin, f"{home}/{path}", b"1")
    tx = {kind: int(ok(guest, Op.TRANSACTION_START, "").rstrip(b"\0")) for kind in EXPECTED}
    ok(guest, Op.READ, "data/none/x", tx_id=tx["none"])
    write(guest, "data/none/x", b"2", tx_id=tx["none"])
    write(guest, "data/written/x", b"2", tx_id=tx["written"])
    ok(guest, Op.READ, "data/read/x", tx_id=tx["read"])
    write(guest, "data/read/other", b"2", tx_id=tx["read"])
    write(guest, "data/removed/x", b"2", tx_id=tx["removed"])
    for kind in ("created", "recreated"):
        missing = guest.call(Op.READ, f"data/{kind}/new", tx_id=tx[kind])
        assert missing.payload == b"ENOENT\0"
        write(guest, f"data/{kind}/own", b"2", tx_id=tx[kind])
    ok(guest, Op.DIRECTORY, "data/children", tx_id=tx["children"])
    write(guest, "data/children/a", b"2", tx_id=tx["children"])
    write(guest, "data/after/x", b"2", tx_id=tx["after"])
    refused = guest.call(Op.WRITE, "data/failed/x", b"v" * 3000, tx_id=tx["failed"])
    assert refused.payload == b"ENOSPC\0"
    write(admin, f"{home}/data/written/x", b"3")
    write(admin, f"{home}/data/read/x", b"3")
    ok(admin, Op.RM, f"{home}/data/removed/x")
    write(admin, f"{home}/data/created/new", b"3")
    write(admin, f"{home}/data/children/b", b"3")
    write(admin, f"{home}/data/recreated/new", b"3")
    return tx


def after_migration_point(admin: WireClient, domid: int) -> None:
    home = f"/local/domain/{domid}"
    ok(admin, Op.RM, f"{home}/data/recreated/new")
    write(admin, f"{home}/data/after/x", b"3")


def commit_all(guest: WireClient, tx: dict[str, int]) -> dict[str, str]:
    answers = {}
    for kind, tx_id in tx.items():
        reply = guest.call(Op.TRANSACTION_END, "T", tx_id=tx_id)
        answers[kind] = reply.payload.rstrip(b"\0").decode()
    return answers


def test_commits_answer_as_at_the_source(
    three_mocks: tuple[MockDaemon, MockDaemon, MockDaemon],
) -> None:
    a, b, referee = three_mocks
    with referee.connect() as admin:
        build_domain(admin)
        with referee.guest(7) as guest:
            tx = open_transactions(admin, guest, 7)
            after_migration_point(admin, 7)
            expected = commit_all(guest, tx)
    assert expected == EXPECTED

    with a.connect() as admin:
        build_domain(admin)
        with a.guest(7) as guest:
            moved = open_transactions(admin, guest, 7)
    assert moved == tx
    run = xsmig(
        "migrate",
        *("--from", str(a.socket_path), "--to", str(b.socket_path)),
        *("--domain", "7", "--domid", "12"),
    )
    assert run.returncode == 0, run.stderr
    with b.connect() as admin, b.guest(12) as guest:
        after_migration_point(admin, 12)
        assert commit_all(guest, moved) == expected
        assert ok(guest, Op.READ, "data/none/x") == b"2"  # the clean one committed here
