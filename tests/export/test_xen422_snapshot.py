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

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.loader_layout import LayoutOptions, lay_out
from xsmig_daemon.image.profiles import XEN_4_22
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalData,
    NodeData,
    Permission,
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
    connections = [r for r in records if isinstance(r, ConnectionData)]
    dom0 = connections[0]
    assert dom0.spec == RingSpec(0, evtchn=1) and dom0.unique_id == 0
    assert dom0.conn_id not in {c.conn_id for c in connections[1:]}
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


def test_the_4_22_layout_puts_a_synthesised_dom0_ring_first() -> None:
    """Before the first connection, watch and node (4.22 crashes on a watch before it), with
    the unknown unique-id 0 of a version-2 stream."""
    records: list[Record] = [
        GlobalData(4, 3),
        ConnectionData(1, SocketSpec(9)),
        WatchData(1, "/a", "t"),
        NodeData("/", b"", (Permission("n", 0),)),
    ]
    out, notes = lay_out(records, XEN_4_22, LayoutOptions(dom0_evtchn=5, dom0_unique_id=0))
    assert out[:5] == [
        GlobalData(4, 3),
        ConnectionData(2, RingSpec(0, evtchn=5), unique_id=0),
        ConnectionData(1, SocketSpec(9)),
        WatchData(1, "/a", "t"),
        NodeData("/", b"", (Permission("n", 0),)),
    ]
    assert any("dom0 ring CONNECTION_DATA synthesised" in note for note in notes)


def test_a_dom0_ring_of_the_source_is_kept_as_it_is() -> None:
    ring = ConnectionData(1, RingSpec(0, evtchn=7))
    records: list[Record] = [GlobalData(4, 3), ring, NodeData("/", b"", (Permission("n", 0),))]
    out, notes = lay_out(records, XEN_4_22, LayoutOptions(dom0_evtchn=5, dom0_unique_id=0))
    assert out[:3] == records
    assert not any("synthesised" in note for note in notes)
