"""``xsmig mockd --compat VERSION`` answers seeded random sessions (compat_session.py) byte for
byte like the real daemon of that version: replies, errors, tx ids, EAGAIN verdicts, watch
events, for two dom0 sockets and two guests over their rings, with domain ops, odd and
malformed payloads, boundary lengths, throw-away connections and pipelining. The long run
(50 seeds x 2,000 steps per version) is compat_sweep.py."""

from __future__ import annotations

import pytest
from compat_session import compat_session
from peerlib import PeerInstall, start_mockd, start_real_xenstored
from random_session import pipelined
from replay import Burst, Connect, Step, compare_transcripts, run_session

from xsmig_daemon.wire.ops import Op

SEEDS = (1, 2, 3)
STEPS = 400


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("piped", [False, True], ids=["sequential", "pipelined"])
def test_mock_compat_answers_like_the_real_version(
    referee: PeerInstall, seed: int, piped: bool
) -> None:
    version = referee.label
    session = compat_session(seed, STEPS, version)
    if piped:
        session = pipelined(session)
    real = start_real_xenstored(install=referee)
    try:
        mock = start_mockd(args=["--compat", version], install=referee)
        try:
            got_real = run_session(real.socket_path, session, real.guest)
            got_mock = run_session(mock.socket_path, session, mock.guest)
            assert real.alive(), f"the real {version} daemon died: {real.log()[-500:]}"
            assert mock.alive(), f"the mock died: {mock.log()[-500:]}"
        finally:
            mock.stop()
    finally:
        real.stop()
    differences = compare_transcripts(got_real, got_mock, collapse_repeated_events=True)
    assert not differences, f"{version} seed {seed}: {len(differences)} differences:\n" + (
        "\n".join(differences[:30])
    )


@pytest.mark.parametrize("version", ["xen-4.17", "xen-4.20"])
def test_compat_sessions_cover_what_the_issue_asks(version: str) -> None:
    """Domain ops, ops the version lacks, malformed payloads, throw-away connections,
    boundary lengths and pipelined bursts all occur in the CI seeds."""
    steps = [a for seed in SEEDS for a in compat_session(seed, STEPS, version)]
    ops = [getattr(a, "op", None) for a in steps]
    for op in (Op.INTRODUCE, Op.RELEASE, Op.SET_TARGET, Op.GET_FEATURE, Op.DIRECTORY_PART):
        assert op in ops, op
    assert sum(1 for a in steps if getattr(a, "raw", None) is not None) > 10
    assert sum(1 for a in steps if isinstance(a, Connect) and a.client.startswith("x")) > 10
    lengths = {len(str(a.args[0])) for a in steps if isinstance(a, Step) and a.args}
    assert any(n > 3072 for n in lengths) and any(2040 < n < 2060 for n in lengths)
    assert any(getattr(a, "client", "").startswith("g") for a in steps)
    bursts = [a for a in pipelined(tuple(steps)) if isinstance(a, Burst)]
    assert len(bursts) > 50
