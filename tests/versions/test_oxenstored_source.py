"""oxenstored (Debian's OCaml xenstored, 4.17 and 4.20) as a third wire source: the image
``snapshot --source wire`` takes of it is restored by each real C loader, which then lists
the same tree (``xenstore-ls -f -p /``) as oxenstored did.

oxenstored cannot INTRODUCE a domain under the shim (it drops the connection), so the tree's
nodes are owned by dom0 and other domains appear only in ACLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oxenstoredlib import Oxenstored, start_oxenstored
from peerlib import DEBIAN_VERSIONS, PeerInstall, RestoreImage
from versionlib import listing, populate, xsmig_ok


@pytest.fixture(params=DEBIAN_VERSIONS, ids=lambda v: f"oxenstored-{v}")
def oxenstored(request: pytest.FixtureRequest) -> Iterator[Oxenstored]:
    daemon = start_oxenstored(request.param)
    try:
        populate(daemon, introduce=False)
        yield daemon
    finally:
        daemon.stop()


def test_wire_snapshot_of_oxenstored_loads_in_each_real_daemon(
    oxenstored: Oxenstored, referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    before = listing(oxenstored.socket_path)
    out = tmp_path / "ox.img"
    xsmig_ok(
        *("snapshot", "--socket", str(oxenstored.socket_path), "--source", "wire"),
        *("--target", referee.label, "--output", str(out)),
    )
    assert oxenstored.alive()
    assert listing(referee_restore(out.read_bytes()).socket_path) == before


def test_oxenstored_snapshot_names_what_it_lacks(oxenstored: Oxenstored, tmp_path: Path) -> None:
    """oxenstored has no quota or feature requests: the manifest says what was left out."""
    out = tmp_path / "ox.img"
    result = xsmig_ok(
        *("snapshot", "--socket", str(oxenstored.socket_path), "--source", "wire"),
        *("--output", str(out), "--json"),
    )
    assert "GET_QUOTA answered ENOSYS" in result.stdout
    assert "GET_FEATURE answered ENOSYS" in result.stdout
    verified = xsmig_ok("verify", str(out))
    assert verified.returncode == 0
