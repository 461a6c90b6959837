"""Migration to and from each real C xenstored (4.17, 4.20; tests/peerlib.py): wire only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from miglib import build_domain, introduce, ls, remapped, xsmig
from peerlib import MockDaemon, RealXenstored, start_mockd
from wireclient import ok, write

from xsmig_daemon.wire.ops import Op

pytestmark = pytest.mark.peer


@pytest.fixture
def source() -> Iterator[MockDaemon]:
    daemon = start_mockd()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_mock_to_real_refuses_connection_state_unless_lossy(
    source: MockDaemon, referee_xenstored: RealXenstored
) -> None:
    with source.connect() as admin, referee_xenstored.connect() as real_admin:
        build_domain(admin)
        with source.guest(7) as guest:
            ok(guest, Op.WATCH, "data", "rel")
            assert guest.event().payload == b"data\0rel\0"  # nothing left pending
            tx = int(ok(guest, Op.TRANSACTION_START, "").rstrip(b"\0"))
            write(guest, "data/t", b"1", tx_id=tx)
        ok(real_admin, Op.WATCH, "@introduceDomain", "new")
        assert real_admin.event().payload == b"@introduceDomain\0new\0"
        before_src, before_real = ls(source, "/"), ls(referee_xenstored, "/")
        sockets = ("--from", str(source.socket_path), "--to", str(referee_xenstored.socket_path))
        run = xsmig("migrate", *sockets, "--domain", "7", "--domid", "12")
        assert run.returncode == 1
        assert (
            f"C xenstored, which cannot take 1 watch (data token rel); 1 open transaction(s) "
            f"(tx {tx}) (--lossy drops them)" in run.stderr
        )
        assert "domain 7 stays at the source" in run.stderr
        assert (ls(source, "/"), ls(referee_xenstored, "/")) == (before_src, before_real)

        run = xsmig("migrate", *sockets, "--domain", "7", "--domid", "12", "--lossy", "--json")
        assert run.returncode == 0, run.stderr
        notes = json.loads(run.stdout)["notes"]
        assert notes == [
            "dropped for the C destination: 1 watch (data token rel)",
            f"dropped for the C destination: 1 open transaction(s) (tx {tx})",
        ]
        assert ls(referee_xenstored, "/local/domain/12") == remapped(
            before_src_home(before_src), 7, 12
        )
        assert ok(real_admin, Op.IS_DOMAIN_INTRODUCED, "12") == b"T\0"
        assert real_admin.event().payload == b"@introduceDomain\0new\0"
        assert ok(admin, Op.IS_DOMAIN_INTRODUCED, "7") == b"F\0"


def before_src_home(listing: list[str]) -> list[str]:
    """The source's /local/domain/7 subtree, out of a listing of ``/``."""
    return [line for line in listing if line.startswith("/local/domain/7/")]


def test_real_destination_conflict_changes_nothing(
    source: MockDaemon, referee_xenstored: RealXenstored
) -> None:
    with source.connect() as admin, referee_xenstored.connect() as real_admin:
        build_domain(admin)
        write(real_admin, "/local/domain/12/x", b"")
        before_src, before_real = ls(source, "/"), ls(referee_xenstored, "/")
        sockets = ("--from", str(source.socket_path), "--to", str(referee_xenstored.socket_path))
        run = xsmig("migrate", *sockets, "--domain", "7", "--domid", "12", "--lossy")
        assert run.returncode == 1
        assert "node /local/domain/12 exists there" in run.stderr
        assert (ls(source, "/"), ls(referee_xenstored, "/")) == (before_src, before_real)


def test_real_source_to_mock(referee_xenstored: RealXenstored) -> None:
    dest = start_mockd()
    try:
        with referee_xenstored.connect() as real_admin, dest.connect() as admin:
            build_domain(real_admin)
            ok(real_admin, Op.WATCH, "@releaseDomain", "gone")
            real_admin.event()
            before = ls(referee_xenstored, "/local/domain/7")
            sockets = ("--from", str(referee_xenstored.socket_path), "--to", str(dest.socket_path))
            run = xsmig("migrate", *sockets, "--domain", "7", "--domid", "12", "--json")
            assert run.returncode == 0, run.stderr
            outcome = json.loads(run.stdout)
            assert outcome["downtime_s"] is None  # a C source is never frozen
            assert any("source (wire)" in note for note in outcome["notes"])
            assert ls(dest, "/local/domain/12") == remapped(before, 7, 12)
            assert ok(admin, Op.IS_DOMAIN_INTRODUCED, "12") == b"T\0"
            assert ok(real_admin, Op.IS_DOMAIN_INTRODUCED, "7") == b"F\0"
            assert real_admin.event().payload == b"@releaseDomain\0gone\0"
    finally:
        dest.stop()


def test_real_destination_takes_an_image(
    source: MockDaemon, referee_xenstored: RealXenstored, tmp_path: Path
) -> None:
    with source.connect() as admin:
        build_domain(admin)
        introduce(admin, 3)
    image = tmp_path / "dom7.img"
    run = xsmig(
        "snapshot", "--socket", str(source.socket_path), "--domain", "7", "--output", str(image)
    )
    assert run.returncode == 0, run.stderr
    run = xsmig("migrate-in", str(image), "--socket", str(referee_xenstored.socket_path))
    assert run.returncode == 0, run.stderr
    assert ls(referee_xenstored, "/local/domain/7") == ls(source, "/local/domain/7")
