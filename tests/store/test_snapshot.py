"""Copy-on-write snapshot (store/snapshot.py): read while the tree changes, it is still the
tree of the instant it began -- values, permissions, child order -- and then it lets go."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xsmig_daemon.image.records import NodeData
from xsmig_daemon.store import Engine, snapshot
from xsmig_daemon.store.image_state import tree_records
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient
from .tree_changes import apply_change, engine_with, operations, paths


@settings(max_examples=200, deadline=None)
@given(initial=st.lists(paths, max_size=12), script=operations)
def test_snapshot_is_the_tree_when_it_began(
    initial: list[str], script: list[tuple[str, str, bytes]]
) -> None:
    engine, client = engine_with(initial)
    expected = list(tree_records(engine))
    snapshot.begin(engine.tree)
    walk = snapshot.tree_records(engine.tree)
    seen: list[NodeData] = []
    for op, path, value in script:
        if op == "walk":
            seen.extend(itertools.islice(walk, 2))
        else:
            apply_change(client, op, path, value)
    seen.extend(walk)
    assert seen == expected
    snapshot.end(engine.tree)
    assert engine.tree.snapshot is None
    assert engine.tree.check() == []


def test_stale_permissions_keep_their_pre_image(dom0: EngineClient) -> None:
    dom0.ok(Op.INTRODUCE, "3", "1", "9")
    dom0.write("/d", "x")
    dom0.ok(Op.SET_PERMS, "/d", "n0", "r3")
    engine = dom0.engine
    before = list(tree_records(engine))
    snapshot.begin(engine.tree)
    dom0.ok(Op.RELEASE, "3")  # marks the r3 entry stale in place
    assert list(snapshot.tree_records(engine.tree)) == before
    snapshot.end(engine.tree)
    node = engine.tree.get("/d")
    assert node is not None and node.perms[1].stale


def test_one_snapshot_at_a_time() -> None:
    engine = Engine()
    snapshot.begin(engine.tree)
    with pytest.raises(RuntimeError):
        snapshot.begin(engine.tree)
