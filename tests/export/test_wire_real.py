"""The wire source against the real Xen 4.17 xenstored (shared/peer), through `xsmig snapshot`.

Expected states come from the real tools (`xenstore-ls -f -p`) and the real daemon, never from
the exporter itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import socket
import subprocess
from pathlib import Path

import pytest
from peerlib import REPO_ROOT, MockDaemon, RealXenstored, RestoreImage, short_tempdir
from snaplib import (
    XENSTORE_CHMOD,
    XENSTORE_WRITE,
    image_nodes,
    image_records,
    introduce,
    nodes_as_listing,
    snapshot,
    snapshot_command,
    tool,
    write_many,
    xenstore_ls,
)
from wireclient import WireClient

from xsmig_daemon.client import connect
from xsmig_daemon.export import ExportPlan, WireSource
from xsmig_daemon.export.consistency import Consistency
from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.profiles import get_profile
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeData,
    Record,
    RingSpec,
)
from xsmig_daemon.wire.ops import Op

pytestmark = pytest.mark.peer


def populate(xs: RealXenstored) -> None:
    sock = xs.socket_path
    for domid in (1, 2):
        home = f"/local/domain/{domid}"
        tool(sock, XENSTORE_WRITE, f"{home}/name", f"guest{domid}", f"{home}/domid", str(domid))
        tool(sock, XENSTORE_WRITE, f"{home}/device/vif/0/state", "4")
        tool(sock, XENSTORE_CHMOD, home, f"n{domid}", "r0")
        tool(sock, XENSTORE_CHMOD, f"{home}/name", f"r{domid}")
        introduce(sock, domid)
    tool(sock, XENSTORE_WRITE, "/vm/uuid-1/name", 'a "quoted" name with spaces', "/empty", "")
    tool(sock, XENSTORE_CHMOD, "/vm/uuid-1", "b0", "r1", "w2")
    # Owned by domain 2 outside its home: part of domain 2's migration stream.
    tool(sock, XENSTORE_WRITE, "/shared/by-dom2", "x")
    tool(sock, XENSTORE_CHMOD, "/shared/by-dom2", "n2", "r1")
    # 300 children of ~21 bytes each: the child list needs DIRECTORY_PART (> 4096 bytes).
    write_many(sock, {f"/wide/child-number-{i:05d}": str(i).encode() for i in range(300)})


@pytest.mark.parametrize("consistency", ["transaction", "watch"])
def test_image_nodes_and_perms_equal_xenstore_ls(
    real_xenstored: RealXenstored, tmp_path: Path, consistency: str
) -> None:
    populate(real_xenstored)
    out = tmp_path / "snap.img"
    run = snapshot(
        real_xenstored.socket_path,
        *("--source", "wire", "--consistency", consistency),
        *("--output", str(out), "--json"),
    )
    assert run.returncode == 0, run.stderr
    expected = xenstore_ls(real_xenstored.socket_path)
    nodes = image_nodes(out.read_bytes())
    assert nodes_as_listing(nodes) == expected
    # Pre-order from '/', children in the daemon's order (as xenstore-ls walks them).
    tree_paths = [n.path for n in nodes if n.path.startswith("/")]
    assert tree_paths == ["/", *expected]
    assert len([p for p in tree_paths if p.startswith("/wide/")]) == 300

    manifest = json.loads(run.stdout)
    on_disk = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest == on_disk
    assert manifest["size"] == out.stat().st_size
    assert manifest["records"]["NODE_DATA"] == len(nodes)
    assert manifest["domains"] == [1, 2]
    assert manifest["source"] == {"kind": "wire", "location": str(real_xenstored.socket_path)}
    assert manifest["freeze_duration_s"] is None
    notes = " ".join(manifest["fidelity_notes"])
    for invisible in ("watches", "transactions", "stale", "GET_QUOTA answered ENOSYS"):
        assert invisible in notes
    assert "@introduceDomain: GET_PERMS answered EINVAL" in notes
    specials = {n.path: n.perms for n in nodes if n.path.startswith("@")}
    assert {k: ",".join(map(str, v)) for k, v in specials.items()} == {
        "@releaseDomain": "n0",
        "@introduceDomain": "n0",
    }


def test_real_417_loads_the_xen_417_image(
    real_xenstored: RealXenstored, restored_xenstored: RestoreImage, tmp_path: Path
) -> None:
    populate(real_xenstored)
    out = tmp_path / "lu.img"
    run = snapshot(
        real_xenstored.socket_path,
        *("--target", "xen-4.17", "--socket-fd", "5", "--evtchn-fd", "6"),
        *("--output", str(out)),
    )
    assert run.returncode == 0, run.stderr
    image = out.read_bytes()
    records = image_records(image, "xen-4.17")
    assert records[0] == GlobalData(5, 6)
    rings = [r.spec for r in records[1:4] if isinstance(r, ConnectionData)]
    assert [(s.domid, s.evtchn) for s in rings if isinstance(s, RingSpec)] == [
        (0, 1),
        (1, 0),
        (2, 0),
    ]
    assert [r.path for r in records[4:6] if isinstance(r, NodeData)] == [
        "@releaseDomain",
        "@introduceDomain",
    ]
    source_listing = xenstore_ls(real_xenstored.socket_path)
    restored = restored_xenstored(image)
    assert xenstore_ls(restored.socket_path) == source_listing
    assert nodes_as_listing(image_nodes(image)) == source_listing


def test_domain_stream_holds_only_what_relates_to_the_domain(
    real_xenstored: RealXenstored, tmp_path: Path
) -> None:
    populate(real_xenstored)
    out = tmp_path / "dom2.img"
    run = snapshot(real_xenstored.socket_path, "--domain", "2", "--output", str(out), "--json")
    assert run.returncode == 0, run.stderr
    # A migration stream starts below '/', which the spec profile's reader rejects for a
    # full image, so only the framing is decoded here.
    _header, located = decode_image(out.read_bytes())
    kept = [item.record for item in located]
    rings = [r for r in kept if isinstance(r, ConnectionData)]
    assert [(r.spec.domid, r.spec.evtchn) for r in rings if isinstance(r.spec, RingSpec)] == [
        (2, 0)
    ]
    paths = [r.path for r in kept if isinstance(r, NodeData)]
    assert paths == [
        "/local/domain/2",
        "/local/domain/2/name",
        "/local/domain/2/domid",
        "/local/domain/2/device",
        "/local/domain/2/device/vif",
        "/local/domain/2/device/vif/0",
        "/local/domain/2/device/vif/0/state",
        "/shared/by-dom2",
    ]
    assert json.loads(run.stdout)["domains"] == [2]


def test_stdout_sink_streams_the_same_tree(real_xenstored: RealXenstored, tmp_path: Path) -> None:
    tool(real_xenstored.socket_path, XENSTORE_WRITE, "/a/b", "1", "/a/c", "2")
    run = snapshot(real_xenstored.socket_path, "--source", "wire", "--output", "-")
    assert run.returncode == 0, run.stderr
    assert nodes_as_listing(image_nodes(run.stdout)) == xenstore_ls(real_xenstored.socket_path)
    assert list(tmp_path.iterdir()) == []


def test_to_unix_streams_to_a_listening_successor(real_xenstored: RealXenstored) -> None:
    write_many(real_xenstored.socket_path, {f"/s/d{i // 100}/n{i}": b"z" * 50 for i in range(6000)})
    listen_dir = short_tempdir()
    path = listen_dir / "succ"
    received = bytearray()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(30)
        exporter = subprocess.Popen(
            snapshot_command(real_xenstored.socket_path, "--to", f"unix:{path}", "--json"),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(30)
                while chunk := conn.recv(65536):
                    received += chunk
                    # The first bytes arrive while the exporter is still walking the tree.
                    if len(received) == len(chunk):
                        assert exporter.poll() is None
            out, err = exporter.communicate(timeout=30)
        finally:
            if exporter.poll() is None:
                exporter.kill()
                exporter.communicate()
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        listen_dir.rmdir()
    assert exporter.returncode == 0, err
    manifest = json.loads(out)
    # --source auto: the real daemon does not answer the introspection probe.
    assert manifest["source"]["kind"] == "wire"
    assert manifest["image"] == f"unix:{path}"
    assert manifest["size"] == len(received)
    assert nodes_as_listing(image_nodes(bytes(received))) == xenstore_ls(real_xenstored.socket_path)


class ChangingOutput:
    """A RecordOutput that, while the first walk runs, changes a node already read."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.records: list[Record] = []
        self.rewinds = 0
        self.changed = False

    async def write(self, record: Record) -> None:
        self.records.append(record)
        nodes = sum(isinstance(r, NodeData) for r in self.records)
        if not self.changed and nodes == 50:
            self.changed = True
            async with connect(self.socket_path) as other:
                await other.write("/early/n1", b"changed")

    async def rewind(self) -> None:
        self.rewinds += 1
        self.records.clear()


@pytest.mark.parametrize("consistency", ["transaction", "watch"])
async def test_a_change_during_the_walk_restarts_it(
    real_xenstored: RealXenstored, consistency: Consistency
) -> None:
    write_many(real_xenstored.socket_path, {f"/early/n{i}": b"before" for i in range(5)})
    write_many(real_xenstored.socket_path, {f"/late/n{i}": b"x" for i in range(200)})
    out = ChangingOutput(str(real_xenstored.socket_path))
    source = WireSource(str(real_xenstored.socket_path), consistency=consistency)
    report = await source.export(ExportPlan("live-update", get_profile("spec"), Header(1)), out)
    assert out.changed
    assert out.rewinds == 1
    assert report.attempts == 2
    values = {r.path: r.value for r in out.records if isinstance(r, NodeData)}
    assert values["/early/n1"] == b"changed"
    assert len([p for p in values if p.startswith("/late/")]) == 200


def test_mock_snapshot_loads_into_the_real_417(
    mockd: MockDaemon, restored_xenstored: RestoreImage, tmp_path: Path
) -> None:
    sock = mockd.socket_path
    tool(sock, XENSTORE_WRITE, "/local/domain/3/name", "guest3", "/vm/a", "b")
    tool(sock, XENSTORE_CHMOD, "/local/domain/3", "n3", "r0")
    introduce(sock, 3)
    out = tmp_path / "mock.img"
    run = snapshot(
        sock,
        *("--source", "wire", "--target", "xen-4.17", "--socket-fd", "5"),
        *("--output", str(out)),
    )
    assert run.returncode == 0, run.stderr
    restored = restored_xenstored(out.read_bytes())
    assert xenstore_ls(restored.socket_path) == xenstore_ls(sock)


def test_progress_only_on_a_terminal(real_xenstored: RealXenstored, tmp_path: Path) -> None:
    write_many(real_xenstored.socket_path, {f"/p/n{i}": b"x" for i in range(50)})
    controller, terminal = pty.openpty()
    shown = b""
    try:
        with os.fdopen(terminal, "wb") as terminal_file:
            exporter = subprocess.Popen(
                snapshot_command(real_xenstored.socket_path, "--output", str(tmp_path / "p.img")),
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=terminal_file,
            )
            assert exporter.wait(timeout=60) == 0
        with contextlib.suppress(OSError):  # EIO once the terminal side is closed and drained
            while chunk := os.read(controller, 4096):
                shown += chunk
    finally:
        os.close(controller)
    text = shown.decode()
    assert "\rxsmig snapshot: " in text
    assert " nodes/s" in text
    quiet = snapshot(real_xenstored.socket_path, "--output", str(tmp_path / "q.img"))
    assert "nodes/s" not in quiet.stderr


def test_quotas_and_features_where_the_daemon_answers(mockd: MockDaemon, tmp_path: Path) -> None:
    sock = mockd.socket_path
    tool(sock, XENSTORE_WRITE, "/local/domain/3/name", "guest3")
    introduce(sock, 3)
    with WireClient.connect(sock) as client:
        names = client.call(Op.GET_QUOTA).payload.rstrip(b"\0").decode().split()
        global_quotas = {n: int(client.call(Op.GET_QUOTA, n).payload.rstrip(b"\0")) for n in names}
        domain_quotas = {
            n: int(client.call(Op.GET_QUOTA, "3", n).payload.rstrip(b"\0")) for n in names
        }
        features = int(client.call(Op.GET_FEATURE, "3").payload.rstrip(b"\0"))
    out = tmp_path / "q.img"
    run = snapshot(sock, "--source", "wire", "--version", "2", "--output", str(out), "--json")
    assert run.returncode == 0, run.stderr
    records = image_records(out.read_bytes())
    (quota_record,) = [r for r in records if isinstance(r, GlobalQuotaData)]
    assert dict(quota_record.domain_quotas) == global_quotas
    (domain,) = [r for r in records if isinstance(r, DomainData)]
    assert (domain.domid, domain.features, dict(domain.quotas)) == (3, features, domain_quotas)
    notes = " ".join(json.loads(run.stdout)["fidelity_notes"])
    assert "GET_QUOTA answered" not in notes
