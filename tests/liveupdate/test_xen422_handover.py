"""The mock's live-update handovers with Xen 4.22, without a 4.22 daemon (CI).

4.22 -> mock: the successor restores 4.22's own dumps (tests/data/xen-4.22), whose depth
watches 4.22 wrote without their depth. mock -> 4.22: the image is in 4.22's loader order and
layout. The same two directions against the live 4.22 daemon, with clients surviving, are
tests/data/xen-4.22/live_check.py (developer session).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from xen422_data import dump, facts

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.profiles import XEN_4_22
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalData,
    GlobalQuotaData,
    NodeData,
    Record,
    RingSpec,
    SocketSpec,
    WatchDataExtended,
)
from xsmig_daemon.image.validate import validate_records
from xsmig_daemon.mockd.liveupdate import build_c_handover, load_successor
from xsmig_daemon.mockd.server import MockDaemon
from xsmig_daemon.store.image_state import restore_engine


@pytest.mark.parametrize("name", ["watches", "watches-v1", "domains", "unintroduced"])
def test_the_mock_restores_4_22_dumps(tmp_path: Path, name: str) -> None:
    (tmp_path / "state_dump").write_bytes(dump(name))
    successor = load_successor(str(tmp_path / "socket"), str(tmp_path), {})
    engine = successor.daemon.engine
    assert not successor.adopted  # no inherited fds here: the socket clients are gone
    listed = facts(name)["ls"]
    for path in ("/vm/1/name", "/local/domain/1/name", "/vm/3/config"):
        assert (f"{path} = " in listed) == (engine.tree.get(path) is not None)


def test_the_mock_keeps_4_22_quotas_features_and_unique_ids(tmp_path: Path) -> None:
    (tmp_path / "state_dump").write_bytes(dump("domains"))
    engine = load_successor(str(tmp_path / "socket"), str(tmp_path), {}).daemon.engine
    reported = facts("domains")
    assert {d: str(engine.domains[d].features) for d in (1, 2)} == {
        int(d): f for d, f in reported["features"].items() if d != "0"
    }
    assert engine.domains[1].quotas["nodes"] == 77
    assert engine.global_quotas["nodes"] == 2000
    assert {d: engine.domains[d].unique_id for d in (1, 2)} == {1: 2, 2: 3}


def test_4_22_depth_watches_come_back_depth_less_on_the_mock() -> None:
    _, located = decode_image(dump("watches"))
    engine = restore_engine([item.record for item in located])
    (client,) = [c for c in engine.connections if c.kind.name == "SOCKET" and c.watches]
    registered = facts("watches")["watches"]
    assert [(w.path, w.depth) for w in client.watches] == [(w["path"], None) for w in registered]


def test_mock_to_4_22_image_keeps_depth_in_the_loader_layout(tmp_path: Path) -> None:
    # A mock state: dom0 client socket with a depth watch, a guest ring, quotas.
    records: list[Record] = [
        GlobalData(-1, -1),
        GlobalQuotaData((("nodes", 2000),)),
        ConnectionData(1, SocketSpec(9)),
        WatchDataExtended(1, "/d", "tok", 1),
        ConnectionData(2, RingSpec(5, evtchn=7), unique_id=6),
        NodeData("/"),
        NodeData("/d"),
        DomainData(0, 14),
        DomainData(5, 14, (("nodes", 77),)),
    ]
    daemon = MockDaemon(str(tmp_path / "socket"), str(tmp_path), restore_engine(records))
    daemon.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        handover = build_c_handover(daemon, None, None, XEN_4_22)
        data = b"".join(
            encode_image(
                handover.records, handover.header, watch_ext_layout=handover.watch_ext_layout
            )
        )
    finally:
        daemon.listener.close()
        for fd in handover.opened_fds:
            os.close(fd)
    header, located = decode_image(data)
    assert header.version == 2
    assert validate_records(located, header, "xen-4.22") == []
    out = [item.record for item in located]
    assert [type(r).__name__ for r in out[:4]] == [
        "GlobalData",
        "GlobalQuotaData",
        "ConnectionData",  # dom0's ring, synthesised, first
        "ConnectionData",
    ]
    assert WatchDataExtended(1, "/d", "tok", 1) in out
    # The depth is where 4.22's loader reads it: u16 at body offset 8, wpath at 10.
    at = data.index(b"/d\0tok\0")
    assert data[at - 2 : at] == b"\x01\x00"
    domains = {r.domid: r for r in out if isinstance(r, DomainData)}
    assert domains[0].features == 14 and dict(domains[5].quotas)["nodes"] == 77
    rings = [r for r in out if isinstance(r, ConnectionData) and isinstance(r.spec, RingSpec)]
    assert {r.spec.domid: r.unique_id for r in rings if isinstance(r.spec, RingSpec)} == {
        0: 0,
        5: 6,
    }
    assert any("domain 5" in loss for loss in handover.losses)
