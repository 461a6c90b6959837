"""Consistency under load: 4 clients keep updating pairs of nodes inside transactions on the
real 4.17 xenstored while snapshots are taken; no image may hold a torn pair."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from peerlib import RealXenstored, wait_until_async
from snaplib import image_nodes, write_many

from xsmig_daemon.client import TransactionConflictError, connect
from xsmig_daemon.export import Destination, ExportPlan, WireSource, run_export
from xsmig_daemon.export.consistency import Consistency
from xsmig_daemon.image.profiles import get_profile
from xsmig_daemon.image.records import Header

pytestmark = pytest.mark.peer

WRITERS = 4
SNAPSHOTS = 5


#: Pause between a writer's commits (seconds), the same for both methods: the watch method
#: repairs a disturbed walk instead of waiting for a quiet one (converge.py).
PAUSE = (0.005, 0.03)


async def keep_updating(
    socket_path: str, pair: int, seed: int, counts: list[int], pause: tuple[float, float]
) -> None:
    """Write the same counter to /pair/P/a and /pair/P/b in one transaction, forever."""
    rng = random.Random(seed)
    async with connect(socket_path, timeout=10) as xs:
        value = 0
        while True:
            value += 1
            try:
                async with xs.transaction() as tx:
                    await xs.read(f"/pair/{pair}/a", tx)
                    await xs.write(f"/pair/{pair}/a", str(value).encode(), tx)
                    await xs.write(f"/pair/{pair}/b", str(value).encode(), tx)
            except TransactionConflictError:
                continue
            counts[pair] += 1
            await trio.sleep(rng.uniform(*pause))


def moved_on(counts: list[int]) -> Callable[[], bool]:
    """Whether every count has grown since now."""
    before = list(counts)
    return lambda: all(now > then for now, then in zip(counts, before, strict=True))


@pytest.mark.parametrize("consistency", ["transaction", "watch"])
async def test_no_torn_pairs_under_concurrent_transactions(
    real_xenstored: RealXenstored, tmp_path: Path, consistency: Consistency
) -> None:
    sock = str(real_xenstored.socket_path)
    filler = {f"/filler/f{i // 50}/n{i}": b"x" * 20 for i in range(200)}
    write_many(real_xenstored.socket_path, filler)
    write_many(
        real_xenstored.socket_path,
        {f"/pair/{p}/{side}": b"0" for p in range(WRITERS) for side in "ab"},
    )
    write_many(real_xenstored.socket_path, {f"/tail/n{i}": b"y" for i in range(20)})
    plan = ExportPlan("live-update", get_profile("spec"), Header(1))
    counts = [0] * WRITERS
    seen: list[dict[int, int]] = []
    attempts: list[int] = []
    async with trio.open_nursery() as nursery:
        for pair in range(WRITERS):
            nursery.start_soon(keep_updating, sock, pair, pair, counts, PAUSE)
        with trio.fail_after(120):
            await wait_until_async(lambda: min(counts) >= 3, 120, "3 commits per writer")
            for index in range(SNAPSHOTS):
                out = tmp_path / f"snap{index}.img"
                result = await run_export(
                    WireSource(sock, max_attempts=50, consistency=consistency),
                    plan,
                    Destination(str(out)),
                )
                attempts.append(result.manifest["attempts"])
                values = {n.path: n.value for n in image_nodes(out.read_bytes())}
                pairs = {}
                for pair in range(WRITERS):
                    a, b = values[f"/pair/{pair}/a"], values[f"/pair/{pair}/b"]
                    assert a == b, f"snapshot {index}: torn pair {pair}: a={a!r} b={b!r}"
                    pairs[pair] = int(a)
                seen.append(pairs)
                # The next snapshot comes after every writer has moved on.
                await wait_until_async(moved_on(counts), 120, "every writer to commit again")
        nursery.cancel_scope.cancel()
    # The writers really were moving while the snapshots were taken.
    for pair in range(WRITERS):
        history = [snap[pair] for snap in seen]
        assert history == sorted(history)
        assert history[-1] > history[0], f"pair {pair} never changed: {history}"
    print(f"commits per writer {counts}, transactions per snapshot {attempts}")
