"""Images written by the real 4.17 daemon, restored into the mock engine: nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import (
    ConnectionData,
    End,
    GlobalData,
    NodeData,
    Record,
    WatchData,
)
from xsmig_daemon.store.image_state import restore_engine, state_records

DATA = Path(__file__).resolve().parent.parent / "data"
IMAGES = sorted(p.name for p in DATA.glob("*.img"))


def real_records(name: str) -> list[Record]:
    _header, located = decode_image((DATA / name).read_bytes())
    return [item.record for item in located if not isinstance(item.record, End)]


def kinds(records: list[Record], kind: type) -> list[Record]:
    return [r for r in records if isinstance(r, kind)]


@pytest.mark.parametrize("name", IMAGES)
def test_restore_keeps_every_record_of_a_real_image(name: str) -> None:
    original = real_records(name)
    engine = restore_engine(original)
    assert engine.tree.check() == []
    again = list(state_records(engine))
    # Same global fds, connections with their pending bytes, watches in order, and nodes
    # (4.17 writes the special nodes first, current Xen after the tree: compare as sets).
    assert kinds(again, GlobalData) == kinds(original, GlobalData)
    assert kinds(again, ConnectionData) == kinds(original, ConnectionData)
    assert kinds(again, WatchData) == kinds(original, WatchData)
    assert set(kinds(again, NodeData)) == set(kinds(original, NodeData))
    assert len(kinds(again, NodeData)) == len(kinds(original, NodeData))
