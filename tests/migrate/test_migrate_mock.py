"""``xsmig migrate`` between two mocks (real processes): the guest's whole xenstore life moves.

Source A has domain 7 with a guest on its endpoint that has watches (one with a depth), two
open transactions (one already conflicting), 200 replies it has not read (more than the
socket and the outstanding quota hold: the daemon has queued replies *and* unprocessed
requests) and half a request. It moves to B as domain 12.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from miglib import (
    GuestState,
    build_domain,
    busy_guest,
    introduce,
    ls,
    read_big_replies,
    remapped,
    xsmig,
)
from peerlib import MockDaemon
from wireclient import WireClient, ok, write

from xsmig_daemon.wire.ops import Op


def test_guest_moves_with_its_whole_state(two_mocks: tuple[MockDaemon, MockDaemon]) -> None:
    a, b = two_mocks
    with a.connect() as admin_a, b.connect() as admin_b:
        build_domain(admin_a)
        ok(admin_a, Op.WATCH, "@releaseDomain", "gone")
        ok(admin_b, Op.WATCH, "@introduceDomain", "new")
        ok(admin_b, Op.WATCH, "/local/domain", "tree")
        for client in (admin_a, admin_b):
            client.event()
            client.events.clear()
        admin_b.event()  # the initial event of the second watch
        guest = a.guest(7)
        state = busy_guest(admin_a, guest)
        before = ls(a, "/local/domain/7")

        run = xsmig(
            "migrate",
            *("--from", str(a.socket_path), "--to", str(b.socket_path)),
            *("--domain", "7", "--domid", "12", "--json"),
        )
        assert run.returncode == 0, run.stderr
        outcome = json.loads(run.stdout)
        assert (outcome["source_domid"], outcome["domid"]) == (7, 12)
        assert 0 < outcome["downtime_s"] < 5

        assert ls(b, "/local/domain/12") == remapped(before, 7, 12)
        assert ls(b, "/vm") == ['/vm/7 = "uuid" (b12)']  # owned elsewhere: moved too
        check_guest_at_destination(guest, b, state)
        guest.close()
        check_watchers(admin_a, admin_b)
        # The source no longer knows the domain: its own nodes are gone, dom0's stay.
        assert ok(admin_a, Op.IS_DOMAIN_INTRODUCED, "7") == b"F\0"
        assert admin_a.call(Op.READ, "/local/domain/7/data/key").payload == b"ENOENT\0"
        assert not (a.rundir / "domain" / "7").exists()


def check_guest_at_destination(old: WireClient, b: MockDaemon, state: GuestState) -> None:
    got: list[int] = []
    read_big_replies(old, len(state.unread), got)  # what was already on its socket
    with b.guest(12) as guest:
        read_big_replies(guest, len(state.unread), got)
        assert got == state.unread  # every pending reply once, in order
        guest.send_raw(state.half[9:])
        reply = guest.receive()
        assert (reply.req_id, reply.payload) == (9999, b"v1")
        assert guest.is_silent(0.2)  # no event for nodes it already had
        reply = guest.call(Op.TRANSACTION_END, "T", tx_id=state.stale_tx)
        assert reply.payload == b"EAGAIN\0"
        ok(guest, Op.TRANSACTION_END, "T", tx_id=state.clean_tx)
        assert ok(guest, Op.READ, "data/txw") == b"t"
        assert {guest.event().payload, guest.event().payload} == {
            b"data/txw\0rel\0",
            b"/local/domain/12/data/txw\0deep\0",
        }
        with b.connect() as admin:
            write(admin, "/local/domain/12/data/sub/new", b"x")
            assert guest.event().payload == b"data/sub/new\0rel\0"  # beyond depth 1: once
            assert guest.is_silent(0.2)


def check_watchers(admin_a: WireClient, admin_b: WireClient) -> None:
    assert admin_a.event().payload == b"@releaseDomain\0gone\0"
    seen: set[bytes] = set()
    while b"@introduceDomain\0new\0" not in seen:
        seen.add(admin_b.event().payload)
    assert b"/local/domain/12/data/sub/leaf\0tree\0" in seen
    assert b"/local/domain/12\0tree\0" in seen


def test_conflicts_leave_both_unchanged(two_mocks: tuple[MockDaemon, MockDaemon]) -> None:
    a, b = two_mocks
    with a.connect() as admin_a, b.connect() as admin_b:
        build_domain(admin_a)
        write(admin_b, "/local/domain/13/x", b"")
        introduce(admin_b, 14)
        ok(admin_b, Op.CONTROL, "quota", "set", "nodes", "5")
        cases = {
            "12": "quota refused: domain 12: it would own",
            "13": "node /local/domain/13 exists at the destination",
            "14": "domain 14 is already introduced at the destination",
        }
        source_before, dest_before = ls(a, "/"), ls(b, "/")
        for domid, cause in cases.items():
            run = xsmig(
                "migrate",
                *("--from", str(a.socket_path), "--to", str(b.socket_path)),
                *("--domain", "7", "--domid", domid),
            )
            assert run.returncode == 1
            assert cause in run.stderr and "domain 7 stays at the source" in run.stderr
            assert len(run.stderr.strip().splitlines()) == 1
            assert (ls(a, "/"), ls(b, "/")) == (source_before, dest_before)
        with a.guest(7) as guest:  # still served at the source
            assert ok(guest, Op.READ, "name") == b"web"


def test_bad_image_and_unknown_domain(
    two_mocks: tuple[MockDaemon, MockDaemon], tmp_path: Path
) -> None:
    a, b = two_mocks
    with a.connect() as admin_a:
        build_domain(admin_a)
    image = tmp_path / "dom7.img"
    run = xsmig("snapshot", "--socket", str(a.socket_path), "--domain", "7", "--output", str(image))
    assert run.returncode == 0, run.stderr
    data = bytearray(image.read_bytes())
    data[40] ^= 0xFF
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(data[:-8]))
    before = ls(b, "/")
    run = xsmig("migrate-in", str(bad), "--socket", str(b.socket_path), "--domid", "12")
    assert run.returncode == 1
    assert "invalid migration stream" in run.stderr and "record" in run.stderr
    assert ls(b, "/") == before
    run = xsmig("migrate-in", str(image), "--socket", str(b.socket_path), "--domid", "12")
    assert run.returncode == 0, run.stderr
    assert ls(b, "/local/domain/12") == remapped(ls(a, "/local/domain/7"), 7, 12)
    run = xsmig(
        "migrate", "--from", str(a.socket_path), "--to", str(b.socket_path), "--domain", "99"
    )
    assert run.returncode == 1
    assert "domain 99 is not introduced" in run.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("migrate", "--from", "/nonexistent/a", "--to", "/nonexistent/b", "--domain", "7"), 1,
         "/nonexistent/a: cannot connect"),
        (("migrate", "--from", "/x", "--to", "/y", "--domain", "0"), 2,
         "--domain: 0 is not a guest domain id"),
        (("migrate-in", "x.img", "--socket", "/y", "--domid", "40000"), 2,
         "--domid: 40000 is not a guest domain id"),
    ],
)  # fmt: skip
def test_bad_arguments(args: tuple[str, ...], code: int, says: str) -> None:
    run = xsmig(*args)
    assert run.returncode == code
    assert says in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_missing_image(two_mocks: tuple[MockDaemon, MockDaemon], tmp_path: Path) -> None:
    _a, b = two_mocks
    run = xsmig("migrate-in", str(tmp_path / "none.img"), "--socket", str(b.socket_path))
    assert run.returncode == 1
    assert "none.img" in run.stderr and len(run.stderr.strip().splitlines()) == 1
