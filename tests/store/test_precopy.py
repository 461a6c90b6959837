"""Pre-copy: a tree sent while it changes, plus the frozen delta, equals the tree at the
freeze -- values, permissions, child order and accounting -- through the image bytes."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.pipeline import ImageParser
from xsmig_daemon.image.records import Header, NodeData, Record
from xsmig_daemon.store import Engine, precopy
from xsmig_daemon.store.image_state import state_records
from xsmig_daemon.store.tree import Tree
from xsmig_daemon.store.treeload import TreeLoader
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient
from .tree_changes import apply_change, engine_with, operations, paths

HEADER = Header(2, False)


def _through_bytes(records: list[Record]) -> list[Record]:
    _, located = decode_image(b"".join(encode_image(records, HEADER)))
    return [item.record for item in located][:-1]  # without END


@settings(max_examples=200, deadline=None)
@given(initial=st.lists(paths, max_size=12), script=operations)
def test_precopy_plus_delta_is_the_frozen_state(
    initial: list[str], script: list[tuple[str, str, bytes]]
) -> None:
    engine, client = engine_with(initial)
    precopy.start(engine.tree)
    # As the running daemon sends it: one node per piece here, the tree changing between.
    walk = precopy.tree_image(engine.tree, HEADER, piece=1)
    sent: list[bytes] = []
    for op, path, value in script:
        if op == "walk":
            sent.extend(itertools.islice(walk, 2))
        else:
            apply_change(client, op, path, value)
    sent.extend(walk)
    delta = precopy.frozen_delta(engine, precopy.stop(engine.tree))
    assert engine.tree.journal is None

    # As the successor loads it (mockd/successor.py).
    loader = TreeLoader(Tree())
    assert loader.feed(ImageParser(None).stream(b"".join(sent))) is not None
    tree = loader.finish()
    restored = precopy.apply(tree, delta.removed, delta.children, _through_bytes(delta.records))
    assert list(state_records(restored)) == list(state_records(engine))
    assert restored.tree.check() == []


def test_delta_holds_only_what_changed() -> None:
    engine = Engine()
    client = EngineClient(engine, engine.connect_socket(7))
    for i in range(50):
        client.write(f"/n/{i}", "x")
    precopy.start(engine.tree)
    client.write("/n/3", "y")
    client.call(Op.RM, "/n/4")
    delta = precopy.frozen_delta(engine, precopy.stop(engine.tree))
    nodes = [r.path for r in delta.records if isinstance(r, NodeData) and r.path.startswith("/")]
    assert nodes == ["/n", "/n/3"]  # /n: its child list changed
    assert delta.removed == ["/n/4"]
    assert list(delta.children) == ["/", "/n"]
