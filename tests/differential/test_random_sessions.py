"""Seeded random sessions (random_session.py) give byte-identical transcripts on the real
Xen 4.17 xenstored and on the mock: replies, tx ids, EAGAIN verdicts, permission verdicts and
watch events."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from peerlib import MockDaemon, PeerInstall, RealXenstored, start_mockd
from random_session import pipelined, random_guest_session, random_session
from replay import Action, Burst, compare_transcripts, run_session

from xsmig_daemon.wire.ops import Op

SEEDS = range(1, 11)
STEPS = 300


@pytest.fixture
def mockd(peer_install: PeerInstall) -> Iterator[MockDaemon]:
    """The mock answering as Xen 4.17, the daemon these sessions are compared with."""
    daemon = start_mockd(args=["--compat", "xen-4.17"], install=peer_install)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.mark.parametrize("seed", SEEDS)
def test_random_session_matches_the_real_daemon(
    seed: int, real_xenstored: RealXenstored, mockd: MockDaemon
) -> None:
    session = random_session(seed, STEPS)
    real = run_session(real_xenstored.socket_path, session)
    mock = run_session(mockd.socket_path, session)
    assert real_xenstored.alive() and mockd.alive()
    differences = compare_transcripts(real, mock)
    assert not differences, f"seed {seed}: {len(differences)} differences:\n" + "\n".join(
        differences
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_random_guest_session_matches_the_real_daemon(
    seed: int, real_xenstored: RealXenstored, mockd: MockDaemon
) -> None:
    """Domains 1 and 2 over their rings next to a dom0 client, with random permissions."""
    session = random_guest_session(seed, STEPS)
    real = run_session(real_xenstored.socket_path, session, real_xenstored.guest)
    mock = run_session(mockd.socket_path, session, mockd.guest)
    assert real_xenstored.alive() and mockd.alive()
    differences = compare_transcripts(real, mock)
    assert not differences, f"seed {seed}: {len(differences)} differences:\n" + "\n".join(
        differences
    )


@pytest.mark.parametrize("seed", range(1, 6))
@pytest.mark.parametrize("make", [random_session, random_guest_session], ids=["dom0", "guests"])
def test_pipelined_random_session_matches_the_real_daemon(
    make: Callable[[int, int], tuple[Action, ...]],
    seed: int,
    real_xenstored: RealXenstored,
    mockd: MockDaemon,
) -> None:
    """The same sessions with each client's consecutive requests pipelined. Repeated
    identical events within a step count once (see compare_transcripts)."""
    session = pipelined(make(seed, STEPS))
    real = run_session(real_xenstored.socket_path, session, real_xenstored.guest)
    mock = run_session(mockd.socket_path, session, mockd.guest)
    assert real_xenstored.alive() and mockd.alive()
    differences = compare_transcripts(real, mock, collapse_repeated_events=True)
    assert not differences, f"seed {seed}: {len(differences)} differences:\n" + "\n".join(
        differences
    )


def test_random_sessions_exercise_conflicts_and_events() -> None:
    """The generator keeps producing what makes the comparison worth having."""
    session = random_session(1, STEPS)
    ops = [getattr(action, "op", None) for action in session]
    assert ops.count(Op.READ) > 20 and ops.count(Op.WRITE) > 40
    assert ops.count(Op.TRANSACTION_START) > 20 and ops.count(Op.TRANSACTION_END) > 10
    assert ops.count(Op.WATCH) > 5 and ops.count(Op.RM) > 5
    guests = random_guest_session(1, STEPS)
    assert sum(1 for a in guests if getattr(a, "client", "").startswith("g")) > STEPS // 2
    bursts = [a for a in pipelined(session) if isinstance(a, Burst)]
    assert len(bursts) > 20 and max(len(b.steps) for b in bursts) > 3
