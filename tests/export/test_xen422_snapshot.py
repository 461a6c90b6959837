"""`xsmig snapshot --target xen-4.22`: what Xen 4.22's loader needs, from the mock and a dump.

That 4.22 really loads these images (and `xenstore-ls -f -p /` matches) is checked against the
live daemon by tests/data/xen-4.22/live_check.py (`snapshots`); here the image is checked
against the profile and the bytes 4.22's loader parses.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from peerlib import MockDaemon
from snaplib import snapshot
from wireclient import payload
from xen422_data import DIR

from xsmig_daemon.export.dom0ring import SYNTHETIC_CONN_ID, Dom0RingFixup
from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalData,
    NodeData,
    Record,
    RingSpec,
    SocketSpec,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.image.validate import validate_records
from xsmig_daemon.wire.ops import Op


def test_introspect_image_for_4_22(mockd: MockDaemon, tmp_path: Path) -> None:
    client = mockd.connect()
    client.request(Op.WRITE, payload("/d/x", value=b"1"))
    assert client.call(Op.WATCH, "/d", "deep", "2").op == Op.WATCH
    client.event()
    out = tmp_path / "i.img"
    run = snapshot(mockd.socket_path, "--target", "xen-4.22", "--output", str(out), "--json")
    assert run.returncode == 0, run.stderr
    data = out.read_bytes()
    header, located = decode_image(data)
    assert header.version == 2
    assert validate_records(located, header, "xen-4.22") == []
    records = [item.record for item in located]
    assert records[0] == GlobalData(4, 3)
    dom0 = next(r for r in records if isinstance(r, ConnectionData))
    assert dom0.spec == RingSpec(0, evtchn=1) and dom0.conn_id == SYNTHETIC_CONN_ID
    assert dom0.unique_id == 0
    (watch,) = [r for r in records if isinstance(r, WatchDataExtended)]
    assert (watch.path, watch.token, watch.depth) == ("/d", "deep", 2)
    # Where 4.22's loader reads it: depth u16 at body offset 8, wpath from 10.
    at = next(item.offset for item in located if item.record is watch) + 8
    assert struct.unpack_from("<H", data, at + 8)[0] == 2
    assert data[at + 10 : at + 13] == b"/d\0"
    (dom0_domain,) = [r for r in records if isinstance(r, DomainData) and r.domid == 0]
    assert dom0_domain.features & 4  # WATCHDEPTH
    notes = json.loads(run.stdout)["fidelity_notes"]
    assert any("dom0 ring CONNECTION_DATA synthesised" in note for note in notes)
    client.close()


def test_image_source_repairs_a_4_22_dump(tmp_path: Path) -> None:
    out = tmp_path / "d.img"
    run = snapshot(
        None,
        *("--image", str(DIR / "watches.img"), "--target", "xen-4.22"),
        *("--output", str(out), "--json"),
    )
    assert run.returncode == 0, run.stderr
    header, located = decode_image(out.read_bytes())
    assert validate_records(located, header, "xen-4.22") == []
    notes = json.loads(run.stdout)["fidelity_notes"]
    assert any(n.startswith("repaired for xen-4.22: 8 depth watches") for n in notes)


def test_a_late_dom0_ring_is_folded_into_the_synthesised_one() -> None:
    fix = Dom0RingFixup(dom0_evtchn=5, unique_id=0)
    records: list[Record] = [
        GlobalData(4, 3),
        ConnectionData(1, SocketSpec(9)),
        WatchData(1, "/a", "t"),
        NodeData("/"),
        ConnectionData(2, RingSpec(0, evtchn=7), out_data=b"x" * 20),
        WatchData(2, "/b", "u"),
    ]
    out = [fixed for record in records for fixed in fix(record)]
    synthetic = ConnectionData(SYNTHETIC_CONN_ID, RingSpec(0, evtchn=5), unique_id=0)
    assert out == [
        GlobalData(4, 3),
        synthetic,
        ConnectionData(1, SocketSpec(9)),
        WatchData(1, "/a", "t"),
        NodeData("/"),
        WatchData(SYNTHETIC_CONN_ID, "/b", "u"),
    ]
    assert len(fix.notes) == 2 and "20 output bytes" in fix.notes[1]


def test_a_dom0_ring_first_is_kept_as_it_is() -> None:
    fix = Dom0RingFixup(dom0_evtchn=5)
    ring = ConnectionData(1, RingSpec(0, evtchn=7))
    assert [r for rec in (GlobalData(4, 3), ring, NodeData("/")) for r in fix(rec)] == [
        GlobalData(4, 3),
        ring,
        NodeData("/"),
    ]
    assert fix.notes == []
