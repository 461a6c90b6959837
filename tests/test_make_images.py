"""tests/data/make_images.py still remakes the committed images: same tree, same watches,
same connections (pending byte counts may differ with the kernel's socket buffering)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from peerlib import running_real_xenstored

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import ConnectionData, ConnType, NodeData, WatchData

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
from make_images import MAKERS

DATA = Path(__file__).resolve().parent / "data"


def _content(image: bytes) -> tuple[object, ...]:
    _header, located = decode_image(image)
    records = [item.record for item in located]
    nodes = sorted(
        (r.path, r.value, tuple(map(str, r.perms))) for r in records if isinstance(r, NodeData)
    )
    watches = [(r.path, r.token) for r in records if isinstance(r, WatchData)]
    conns = [
        (
            r.conn_type,
            r.spec if r.conn_type == ConnType.RING else None,
            bool(r.in_data),
            bool(r.out_data),
        )
        for r in records
        if isinstance(r, ConnectionData)
    ]
    return nodes, watches, conns


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_remade_image_matches_the_committed_one(name: str, tmp_path: Path) -> None:
    with running_real_xenstored() as xs:
        remade = MAKERS[name](xs, tmp_path / name)
    assert _content(remade) == _content((DATA / name).read_bytes())
