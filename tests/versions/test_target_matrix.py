"""Every source x every real target: the image xsmig writes for ``--target xen-4.17`` /
``xen-4.20`` is restored by that real daemon (``xenstored -U``), which then lists the same
tree as the source (``xenstore-ls -f -p /``) and, where the source had clients and watches
(introspect of the mock, real dumps), delivers a watch event to a client connected before.

Sources: introspect (mock), wire (mock, real 4.17, real 4.20), image (the real dumps of both
versions in shared/peer*/images). ``referee`` runs each test once per real version.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peerlib import (
    DEBIAN_VERSIONS,
    MockDaemon,
    PeerInstall,
    RestoreFds,
    RestoreImage,
    running_mockd,
    start_mockd,
    start_real_xenstored,
    start_restored_xenstored,
)
from versionlib import assert_event_reaches, listing, populate, watcher_fd, xsmig, xsmig_ok
from wireclient import WireClient, ok, write

from xsmig_daemon.wire.ops import Op


@pytest.fixture
def populated_mock(peer_install: PeerInstall) -> Iterator[MockDaemon]:
    daemon = start_mockd(install=peer_install)
    try:
        populate(daemon)
        yield daemon
    finally:
        daemon.stop()


def _snapshot(socket_path: Path, source: str, target: str, out: Path) -> bytes:
    xsmig_ok(
        "snapshot",
        *("--socket", str(socket_path), "--source", source, "--target", target),
        *("--output", str(out)),
    )
    return out.read_bytes()


def test_introspect_of_the_mock(
    populated_mock: MockDaemon, referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    mock = populated_mock
    watcher = mock.connect()
    ok(watcher, Op.WATCH, "/vm", "vm-token")
    assert watcher.event().payload == b"/vm\0vm-token\0"
    before = listing(mock.socket_path)
    image = _snapshot(mock.socket_path, "introspect", referee.label, tmp_path / "i.img")
    restored = referee_restore(image)
    assert listing(restored.socket_path) == before
    assert_event_reaches(restored, image, "vm-token", "/vm/1/name")
    watcher.close()


def test_wire_of_the_mock(
    populated_mock: MockDaemon, referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    before = listing(populated_mock.socket_path)
    image = _snapshot(populated_mock.socket_path, "wire", referee.label, tmp_path / "w.img")
    assert listing(referee_restore(image).socket_path) == before


@pytest.mark.parametrize("source_version", DEBIAN_VERSIONS, ids=lambda v: f"from-{v}")
def test_wire_of_a_real_daemon(
    source_version: str, referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    source = start_real_xenstored(install=PeerInstall.locate(source_version).ensure())
    try:
        populate(source)
        before = listing(source.socket_path)
        image = _snapshot(source.socket_path, "wire", referee.label, tmp_path / "r.img")
    finally:
        source.stop()
    assert listing(referee_restore(image).socket_path) == before


@pytest.mark.parametrize("source_version", DEBIAN_VERSIONS, ids=lambda v: f"from-{v}")
def test_image_of_a_real_dump(
    source_version: str,
    referee: PeerInstall,
    referee_restore: RestoreImage,
    shared_path: Path,
    tmp_path: Path,
) -> None:
    """watches.img of each version: a socket client watches /local/domain/0/name (tokA)."""
    source_install = PeerInstall.locate(source_version).ensure()
    original = (source_install.peer_dir / "images/watches.img").read_bytes()
    out = tmp_path / "m.img"
    xsmig_ok(
        "snapshot",
        *("--source", "image", "--image", str(source_install.peer_dir / "images/watches.img")),
        *("--target", referee.label, "--output", str(out)),
    )
    image = out.read_bytes()
    # The source's own view: the dump restored by the daemon that wrote it.
    own = start_restored_xenstored(
        original, RestoreFds.from_image(original), install=source_install
    )
    try:
        before = listing(own.socket_path)
    finally:
        own.stop()
    restored = referee_restore(image)
    assert listing(restored.socket_path) == before
    assert watcher_fd(image, "tokA") >= 0
    assert_event_reaches(restored, image, "tokA", "/local/domain/0/name")


def test_a_node_owned_by_a_domain_without_a_ring_fails_naming_it(
    peer_install: PeerInstall, referee: PeerInstall, tmp_path: Path
) -> None:
    """Both real loaders exit on such a node (their own dumps too): refused, nothing written."""
    with running_mockd() as mock, mock.connect() as dom0:
        write(dom0, "/local/domain/7/x", b"1")
        ok(dom0, Op.SET_PERMS, "/local/domain/7", "n7")
        out = tmp_path / "o.img"
        result = xsmig(
            *("snapshot", "--socket", str(mock.socket_path), "--target", referee.label),
            *("--output", str(out)),
        )
    assert result.returncode == 1
    assert "'/local/domain/7' is owned by domain 7, which has no ring" in result.stderr
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []


def test_a_client_of_the_restored_daemon_is_a_normal_client(
    populated_mock: MockDaemon, referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    """New clients of the restored daemon are served too (its listening socket works)."""
    image = _snapshot(populated_mock.socket_path, "introspect", referee.label, tmp_path / "c.img")
    restored = referee_restore(image)
    with WireClient.connect(restored.socket_path) as fresh:
        assert fresh.call(Op.READ, "/vm/1/name").payload == b"guest-one"


def test_convert_of_a_default_snapshot_needs_no_lossy(
    referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    """A mock answering as that version (``--compat``) snapshots, by default, a spec v2 image
    with GLOBAL_QUOTA_DATA and DOMAIN_DATA holding the defaults the real daemon starts with:
    converting it for that daemon loses nothing, so no --lossy is needed."""
    mock = start_mockd(args=["--compat", referee.label], install=referee)
    try:
        populate(mock)
        before = listing(mock.socket_path)
        spec = tmp_path / "spec.img"
        xsmig_ok("snapshot", "--socket", str(mock.socket_path), "--output", str(spec))
    finally:
        mock.stop()
    out = tmp_path / "c.img"
    result = xsmig_ok("convert", str(spec), str(out), "--target", referee.label)
    assert "not carried: 1 GLOBAL_QUOTA_DATA record holding the loader's own defaults" in (
        result.stderr
    )
    assert listing(referee_restore(out.read_bytes()).socket_path) == before
