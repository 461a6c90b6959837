"""Watch consistency under writers that never pause (the mock and the real 4.17 and 4.20
xenstored): no whole walk is quiet, yet every snapshot converges by repair rounds, within the
first converged attempt, and holds no torn pair. The walks run on the lanes of lanewalk.py
(several connections) while the watch and its barriers are on another."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from peerlib import MockDaemon, RealXenstored
from snaplib import image_nodes, write_many

from xsmig_daemon.client import TransactionConflictError, connect
from xsmig_daemon.export import Destination, ExportPlan, SourceError, WireSource, run_export
from xsmig_daemon.export import wire as wire_module
from xsmig_daemon.image.profiles import get_profile
from xsmig_daemon.image.records import Header

pytestmark = pytest.mark.peer

WRITERS = 2
SNAPSHOTS = 4


async def never_pause(socket_path: str, pair: int, counts: list[int]) -> None:
    """Commit the same counter to /pair/P/a and /pair/P/b, back to back, for ever."""
    async with connect(socket_path, timeout=10) as xs:
        value = 0
        while True:
            value += 1
            try:
                async with xs.transaction() as tx:
                    await xs.write(f"/pair/{pair}/a", str(value).encode(), tx)
                    await xs.write(f"/pair/{pair}/b", str(value).encode(), tx)
            except TransactionConflictError:
                continue
            counts[pair] += 1


FIXTURES = {"mock": "mockd", "xen-4.17": "real_xenstored", "xen-4.20": "real_xenstored_420"}


@pytest.mark.parametrize("daemon", list(FIXTURES))
async def test_watch_snapshots_converge_while_writers_never_pause(
    request: pytest.FixtureRequest, tmp_path: Path, daemon: str
) -> None:
    peer: MockDaemon | RealXenstored = request.getfixturevalue(FIXTURES[daemon])
    sock = str(peer.socket_path)
    write_many(peer.socket_path, {f"/filler/f{i // 50}/n{i}": b"x" * 20 for i in range(500)})
    write_many(peer.socket_path, {f"/pair/{p}/{s}": b"0" for p in range(WRITERS) for s in "ab"})
    plan = ExportPlan("live-update", get_profile("spec"), Header(1))
    counts = [0] * WRITERS
    rounds: list[int] = []
    async with trio.open_nursery() as nursery:
        for pair in range(WRITERS):
            nursery.start_soon(never_pause, sock, pair, counts)
        with trio.fail_after(120):
            for index in range(SNAPSHOTS):
                before = list(counts)
                out = tmp_path / f"snap{index}.img"
                # A narrow window makes the walk long: the writers always commit during it.
                source = WireSource(sock, max_attempts=2, window=4, consistency="watch")
                result = await run_export(source, plan, Destination(str(out)))
                assert result.manifest["attempts"] == 2, "the streamed walk was never disturbed"
                rounds.append(result.manifest["repair_rounds"])
                values = {n.path: n.value for n in image_nodes(out.read_bytes())}
                for pair in range(WRITERS):
                    a, b = values[f"/pair/{pair}/a"], values[f"/pair/{pair}/b"]
                    assert a == b, f"snapshot {index}: torn pair {pair}: a={a!r} b={b!r}"
                    assert int(a) >= before[pair], "older than a commit acknowledged before"
                assert sum(1 for p in values if p.startswith("/filler/")) == 500 + 10
        nursery.cancel_scope.cancel()
    assert min(rounds) >= 1, f"repair rounds {rounds}"
    print(f"commits per writer {counts}, repair rounds per snapshot {rounds}")


async def test_no_convergence_is_one_line_error(
    mockd: MockDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire_module, "DEFAULT_ROUNDS", 0)
    sock = str(mockd.socket_path)
    write_many(mockd.socket_path, {f"/filler/n{i}": b"x" for i in range(200)})
    write_many(mockd.socket_path, {"/pair/0/a": b"0", "/pair/0/b": b"0"})
    plan = ExportPlan("live-update", get_profile("spec"), Header(1))
    out = tmp_path / "snap.img"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(never_pause, sock, 0, [0])
        source = WireSource(sock, max_attempts=2, window=4, consistency="watch")
        with trio.fail_after(60), pytest.raises(SourceError) as caught:
            await run_export(source, plan, Destination(str(out)))
        nursery.cancel_scope.cancel()
    message = str(caught.value)
    assert "no consistent snapshot after 2 attempts (watch; last: /pair/0/" in message
    assert "still changing after 0 repair rounds" in message and "\n" not in message
    assert not out.exists()
