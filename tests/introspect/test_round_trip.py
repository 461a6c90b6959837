"""Issue 4's round trip: snapshot a busy mock (introspect), restore it in a second mock, from
a file and through ``--to unix:``, snapshot that one: identical state, byte-identical files.

The restored mock cannot resume the 5 socket connections (their fds stay with mock A); it
reports each one and keeps it detached (docs/introspect.md), so image B still holds them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from introlib import (
    DOMAINS,
    SOCKET_CLIENTS,
    RoundTripState,
    build_round_trip_state,
    mock,
    records_of,
    restoring_mock,
    snapshot,
    xsmig,
)
from peerlib import MockDaemon, short_tempdir, wait_until
from wireclient import ok

from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    NodeAccess,
    NodeData,
    RingSpec,
    SocketSpec,
    TransactionData,
    WatchDataExtended,
)
from xsmig_daemon.wire.ops import Op


@pytest.fixture(scope="module")
def source() -> Iterator[tuple[MockDaemon, RoundTripState]]:
    with mock() as daemon:
        state = build_round_trip_state(daemon)
        try:
            yield daemon, state
        finally:
            state.close()


@pytest.fixture
def work() -> Iterator[Path]:
    directory = short_tempdir()
    yield directory
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


def test_image_holds_the_whole_state(source: tuple[MockDaemon, RoundTripState], work: Path) -> None:
    daemon, state = source
    run = snapshot(daemon.socket_path, "--source", "introspect", "--output", str(work / "a.img"))
    assert run.returncode == 0, run.stderr
    records = records_of(work / "a.img")
    conns = [r for r in records if isinstance(r, ConnectionData)]
    rings = {r.conn_id: r for r in conns if isinstance(r.spec, RingSpec)}
    sockets = [r for r in conns if isinstance(r.spec, SocketSpec)]
    assert sorted(r.spec.domid for r in rings.values() if isinstance(r.spec, RingSpec)) == list(
        DOMAINS
    )
    # The exporter's own connection is not part of the state.
    assert len(sockets) == SOCKET_CLIENTS
    assert sockets[-1].in_data == b"\x02\x00\x00"
    # Three writes under /shared each queued an event in every ring (the guests had gone;
    # the initial event of the WATCH reached the guest while it was attached).
    for ring in rings.values():
        assert ring.out_data.count(b"shared-") == 3, ring
    txs = Counter(r.conn_id for r in records if isinstance(r, TransactionData))
    assert len(txs) == len(DOMAINS) + SOCKET_CLIENTS and set(txs.values()) == {1}
    tx_nodes = {
        (r.conn_id, r.path): r.access
        for r in records
        if isinstance(r, NodeData) and not r.committed and r.conn_id in rings
    }
    for conn_id, ring in rings.items():
        assert isinstance(ring.spec, RingSpec)
        home = f"/local/domain/{ring.spec.domid}"
        assert tx_nodes[conn_id, f"{home}/data/keep"] == NodeAccess.READ
        assert tx_nodes[conn_id, f"{home}/data/new"] & NodeAccess.WRITTEN
        assert tx_nodes[conn_id, f"{home}/data/old"] == NodeAccess.DELETED
    depths = {(r.path, r.depth) for r in records if isinstance(r, WatchDataExtended)}
    assert ("data", 1) in depths and ("/sock/1", 2) in depths
    quotas = {r.domid: dict(r.quotas) for r in records if isinstance(r, DomainData)}
    assert all(quotas[domid]["nodes"] == state.quotas[domid] for domid in DOMAINS)
    committed = {r.path for r in records if isinstance(r, NodeData) and r.committed}
    assert "/local/domain/7/data/old" in committed and "/local/domain/7/data/new" not in committed


def _restore_and_compare(image_a: Path, restored: MockDaemon, work: Path) -> None:
    run = snapshot(restored.socket_path, "--source", "introspect", "--output", str(work / "b.img"))
    assert run.returncode == 0, run.stderr
    diff = xsmig("diff", str(image_a), str(work / "b.img"))
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert image_a.read_bytes() == (work / "b.img").read_bytes()
    notes = [line for line in restored.log().splitlines() if "not resumed" in line]
    assert len(notes) == SOCKET_CLIENTS, restored.log()
    assert all("kept detached" in line for line in notes)


def _restored_daemon_serves(restored: MockDaemon) -> None:
    """The restored state is live: a guest gets its queued events, then commits its tx."""
    with restored.guest(7) as guest:
        for round_ in range(3):
            event = guest.receive()
            assert event.op == Op.WATCH_EVENT
            assert event.payload == f"/shared/news/{round_}\0shared-7\0".encode()
        reply = guest.call(Op.READ, "data/new")  # outside the transaction: not committed yet
        assert reply.op == Op.ERROR and reply.payload == b"ENOENT\0"
        ok(guest, Op.TRANSACTION_END, "T", tx_id=1)
        assert ok(guest, Op.READ, "data/new") == b"in-tx"
        assert guest.call(Op.READ, "data/old").payload == b"ENOENT\0"


def test_round_trip_through_a_file(source: tuple[MockDaemon, RoundTripState], work: Path) -> None:
    daemon, _ = source
    image_a = work / "a.img"
    run = snapshot(daemon.socket_path, "--source", "introspect", "--output", str(image_a))
    assert run.returncode == 0, run.stderr
    with mock("--restore", str(image_a)) as restored:
        _restore_and_compare(image_a, restored, work)
        _restored_daemon_serves(restored)


def test_round_trip_through_a_unix_socket(
    source: tuple[MockDaemon, RoundTripState], work: Path
) -> None:
    daemon, _ = source
    image_a = work / "a.img"
    run = snapshot(daemon.socket_path, "--source", "introspect", "--output", str(image_a))
    assert run.returncode == 0, run.stderr
    stream = work / "succ"
    with restoring_mock(stream) as restored:
        sent = snapshot(daemon.socket_path, "--source", "introspect", "--to", f"unix:{stream}")
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: "listening on" in restored.log() or not restored.alive(), 30, "restore")
        assert restored.alive(), restored.log()
        _restore_and_compare(image_a, restored, work)
        _restored_daemon_serves(restored)


def test_a_domain_stream_holds_that_domain_only(
    source: tuple[MockDaemon, RoundTripState], work: Path
) -> None:
    daemon, state = source
    out = work / "dom7.img"
    run = snapshot(
        daemon.socket_path, "--source", "introspect", "--domain", "7", "--output", str(out)
    )
    assert run.returncode == 0, run.stderr
    records = records_of(out, migration=True)
    (ring,) = [r for r in records if isinstance(r, ConnectionData)]
    assert isinstance(ring.spec, RingSpec) and ring.spec.domid == 7
    assert ring.out_data.count(b"shared-7") == 3
    assert [r.domid for r in records if isinstance(r, DomainData)] == [7]
    assert (
        dict(next(r for r in records if isinstance(r, DomainData)).quotas)["nodes"]
        == (state.quotas[7])
    )
    paths = {r.path for r in records if isinstance(r, NodeData)}
    assert all(path.startswith("/local/domain/7") for path in paths), paths
    assert sum(isinstance(r, TransactionData) for r in records) == 1
