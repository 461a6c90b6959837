"""Faults during a migration between two mock processes; the driver runs in this process and
a checkpoint kills one end at a chosen phase. Both ends must stay consistent."""

from __future__ import annotations

import signal

import pytest
import trio
from miglib import build_domain, ls, remapped
from peerlib import MockDaemon
from wireclient import PeerError, ok, write

from xsmig_daemon.export.migrate import Checkpoint, MigrationError
from xsmig_daemon.export.migrate_run import Options, migrate
from xsmig_daemon.wire.ops import Op


def killer(daemon: MockDaemon, phase: str) -> Checkpoint:
    async def checkpoint(now: str) -> None:
        if now == phase:
            daemon.process.send_signal(signal.SIGKILL)
            await trio.to_thread.run_sync(daemon.process.wait)

    return checkpoint


async def test_destination_killed_mid_import(two_mocks: tuple[MockDaemon, MockDaemon]) -> None:
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    before = ls(a, "/")
    with pytest.raises(MigrationError, match="domain 7 stays at the source"):
        await migrate(
            str(a.socket_path),
            str(b.socket_path),
            7,
            12,
            Options(),
            checkpoint=killer(b, "exported"),
        )
    assert ls(a, "/") == before  # thawed, unchanged
    with a.guest(7) as guest:
        assert ok(guest, Op.READ, "name") == b"web"
    with a.connect() as admin:
        assert ok(admin, Op.IS_DOMAIN_INTRODUCED, "7") == b"T\0"


async def test_source_killed_after_export(two_mocks: tuple[MockDaemon, MockDaemon]) -> None:
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    before = ls(a, "/local/domain/7")
    with pytest.raises(MigrationError, match="is at the destination as 12, but the source"):
        await migrate(
            str(a.socket_path),
            str(b.socket_path),
            7,
            12,
            Options(),
            checkpoint=killer(a, "exported"),
        )
    assert ls(b, "/local/domain/12") == remapped(before, 7, 12)
    with b.guest(12) as guest:
        assert ok(guest, Op.READ, "name") == b"web"


async def test_source_frozen_until_release(two_mocks: tuple[MockDaemon, MockDaemon]) -> None:
    """Between the export and the release nobody is served at the source: the stream is the
    domain's state at the freeze, nothing written after it can be lost."""
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)
    answers: list[str] = []

    def try_read() -> None:
        with a.connect(timeout=0.3) as client:
            try:
                client.call(Op.READ, "/local/domain/7/name")
                answers.append("served during the freeze")
            except PeerError as exc:
                answers.append(str(exc))

    async def checkpoint(phase: str) -> None:
        if phase == "imported":
            await trio.to_thread.run_sync(try_read)

    await migrate(str(a.socket_path), str(b.socket_path), 7, None, Options(), checkpoint=checkpoint)
    assert len(answers) == 1 and "within the timeout" in answers[0]
    assert ls(b, "/local/domain/7")[0] == '/local/domain/7/name = "web" (n0,r7)'


@pytest.mark.parametrize("change", ["write", "rm", "chmod"])
async def test_change_after_the_precopy_sends_everything(
    two_mocks: tuple[MockDaemon, MockDaemon], change: str
) -> None:
    """A node written, removed or re-permitted between the pre-copy and the freeze: the
    frozen stream carries every node again and the destination uses it, not the copy."""
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)

    def alter() -> None:
        with a.connect() as admin:
            if change == "write":
                write(admin, "/local/domain/7/data/sub/leaf", b"later")
            elif change == "rm":
                ok(admin, Op.RM, "/local/domain/7/data/sub")
            else:
                ok(admin, Op.SET_PERMS, "/local/domain/7/name", "n0", "b7")

    async def checkpoint(phase: str) -> None:
        if phase == "precopied":
            await trio.to_thread.run_sync(alter)

    await migrate(str(a.socket_path), str(b.socket_path), 7, 12, Options(), checkpoint=checkpoint)
    with a.connect() as admin:
        assert ok(admin, Op.IS_DOMAIN_INTRODUCED, "7") == b"F\0"
    expected = {
        "write": '/local/domain/12/data/sub/leaf = "later" (b12)',
        "rm": '/local/domain/12/data/key = "v1" (b12)',
        "chmod": '/local/domain/12/name = "web" (n0,b12)',
    }[change]
    listing = ls(b, "/local/domain/12")
    assert expected in listing
    assert (change == "rm") == ("/local/domain/12/data/sub" not in " ".join(listing))


async def test_source_deadline_before_the_release(
    two_mocks: tuple[MockDaemon, MockDaemon],
) -> None:
    """The source thaws at its freeze deadline after the import: the driver still releases
    the domain there (RELEASE), so that it does not live on in two places, and says so."""
    a, b = two_mocks
    with a.connect() as admin:
        build_domain(admin)

    def until_thawed() -> None:
        with a.connect(timeout=10) as client:  # answered once the deadline has passed
            assert ok(client, Op.READ, "/local/domain/7/name") == b"web"

    async def checkpoint(phase: str) -> None:
        if phase == "imported":
            await trio.to_thread.run_sync(until_thawed)

    with pytest.raises(MigrationError, match=r"freeze ended at the 0\.5 s deadline"):
        await migrate(
            str(a.socket_path),
            str(b.socket_path),
            7,
            12,
            Options(freeze_deadline=0.5),
            checkpoint=checkpoint,
        )
    with a.connect() as admin:
        assert ok(admin, Op.IS_DOMAIN_INTRODUCED, "7") == b"F\0"
    with b.connect() as admin:
        assert ok(admin, Op.IS_DOMAIN_INTRODUCED, "12") == b"T\0"
