"""Consistency under load: 4 clients keep rewriting pairs of nodes inside transactions while
introspect snapshots are taken (every freeze mode); no image ever holds a torn pair."""

from __future__ import annotations

from pathlib import Path

import trio
from introlib import XSMIG, mock, records_of
from peerlib import REPO_ROOT, wait_until_async

from xsmig_daemon.client import TransactionConflictError, connect
from xsmig_daemon.image.records import NodeData

PAIRS = 8
CLIENTS = 4
SNAPSHOTS = 6
FREEZE_MODES = ("capture", "stream", "snapshot")


async def test_no_image_holds_a_torn_pair(tmp_path: Path) -> None:
    with mock() as daemon:
        socket_path = str(daemon.socket_path)
        commits = [0] * CLIENTS

        async def updater(index: int) -> None:
            async with connect(socket_path, timeout=10) as xs:
                round_ = 0
                while True:
                    round_ += 1
                    pair = f"/pair/{(index + round_) % PAIRS}"
                    value = f"{index}.{round_}".encode()
                    try:
                        async with xs.transaction() as tx:
                            await xs.write(f"{pair}/a", value, tx)
                            await xs.write(f"{pair}/b", value, tx)
                    except TransactionConflictError:
                        continue
                    commits[index] += 1

        images = []
        async with trio.open_nursery() as nursery:
            for index in range(CLIENTS):
                nursery.start_soon(updater, index)
            await wait_until_async(lambda: sum(commits) >= 50, 60, "50 commits")
            for number in range(SNAPSHOTS):
                image = tmp_path / f"s{number}.img"
                argv = [*XSMIG, "snapshot", "--socket", socket_path, "--source", "introspect"]
                argv += ["--freeze-mode", FREEZE_MODES[number % len(FREEZE_MODES)]]
                done = await trio.run_process(
                    [*argv, "--output", str(image)], cwd=REPO_ROOT, capture_stderr=True, check=False
                )
                assert done.returncode == 0, done.stderr
                images.append(image)
            nursery.cancel_scope.cancel()

    seen_states = set()
    for image in images:
        values = {
            r.path: r.value for r in records_of(image) if isinstance(r, NodeData) and r.committed
        }
        pairs = {
            p.rsplit("/", 1)[0] for p in values if p.startswith("/pair/") and p.count("/") == 3
        }
        assert len(pairs) == PAIRS
        for pair in pairs:
            assert values[f"{pair}/a"] == values[f"{pair}/b"], f"{image.name}: {pair} torn"
        seen_states.add(tuple(sorted(values.items())))
    # The clients kept committing between snapshots (this was not a quiet store).
    assert len(seen_states) == SNAPSHOTS
