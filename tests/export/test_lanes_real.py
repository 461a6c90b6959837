"""The lane walk (export/lanewalk.py, the default ``--consistency watch``) against the real
4.17 and 4.20 xenstored and the mock: whatever the number of connections, its image is byte
for byte the one-connection walk's inside one transaction, on a store with introduced
domains, several permission lists, empty values and a child list too big for one DIRECTORY
reply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from peerlib import PeerInstall, RunningDaemon, start_mockd, start_real_xenstored
from snaplib import image_nodes, introduce, snapshot, write_many
from wireclient import WireClient

from xsmig_daemon.wire.ops import Op

pytestmark = pytest.mark.peer

DOMAINS = (1, 2, 3)


@pytest.fixture(params=["xen-4.17", "xen-4.20", "mock"])
def daemon(request: pytest.FixtureRequest) -> Iterator[RunningDaemon]:
    kind: str = request.param
    install = PeerInstall.locate("4.20" if kind == "xen-4.20" else "4.17")
    if kind == "mock":
        started: RunningDaemon = start_mockd(install=install)
    else:
        started = start_real_xenstored(install=install)
    try:
        yield started
    finally:
        started.stop()


def populate(socket_path: Path) -> None:
    for domid in DOMAINS:
        introduce(socket_path, domid)
    items = {
        f"/local/domain/{d}/data/d{i // 40}/n{i % 40}": f"value {d}.{i}".encode()
        for d in DOMAINS
        for i in range(400)
    }
    items.update({f"/local/domain/{d}/empty": b"" for d in DOMAINS})
    # 450 names of 12 bytes: more than one 4096-byte DIRECTORY reply holds.
    items.update({f"/wide/child-{i:06d}": b"w" for i in range(450)})
    write_many(socket_path, items)
    with WireClient.connect(socket_path) as client:
        for d in DOMAINS:
            for path in (f"/local/domain/{d}", f"/local/domain/{d}/data/d3"):
                reply = client.call(Op.SET_PERMS, path, f"n{d}", "r0")
                assert reply.op == Op.SET_PERMS, reply.payload
        reply = client.call(Op.SET_PERMS, "/wide/child-000007", "b0", "w2", "r3")
        assert reply.op == Op.SET_PERMS, reply.payload


def take(daemon: RunningDaemon, out: Path, *args: str) -> bytes:
    run = snapshot(daemon.socket_path, "--source", "wire", "--output", str(out), "--json", *args)
    assert run.returncode == 0, run.stderr
    manifest = json.loads(run.stdout)
    assert manifest["attempts"] == 1, "the store was quiet"
    return out.read_bytes()


def test_lane_walk_is_byte_identical_to_one_transaction(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    populate(daemon.socket_path)
    reference = take(daemon, tmp_path / "tx.img", "--consistency", "transaction")
    paths = [node.path for node in image_nodes(reference)]
    assert "/wide/child-000449" in paths and "/local/domain/3/data/d9/n39" in paths
    for connections in ("1", "3", "8"):
        image = take(daemon, tmp_path / f"lanes{connections}.img", "--connections", connections)
        assert image == reference, f"--connections {connections} differs from one transaction"
    manifest = json.loads((tmp_path / "lanes3.img.manifest.json").read_text())
    assert any("spread over 3 connection(s)" in n for n in manifest["fidelity_notes"])
