"""Real dumps of both versions (shared/peer*/images, and the fresh captures of tests/data and
tests/data/xen-4.20, made by tests/data/make_images.py): each verifies and inspects, loads
into its own real daemon and into ``mockd --restore`` with the same view, converts to the
other version byte-exactly where the content is the same, and ``xsmig diff`` of the two
versions' dumps of one scenario reports no difference, only differing fd numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from peerlib import PeerInstall, RestoreImage, RunningDaemon, running_mockd
from versionlib import xsmig, xsmig_ok

from xsmig_daemon.wire.ops import Op

DATA = Path(__file__).resolve().parent.parent / "data"
#: Each version's fresh captures (tests/data/README.md says how they were made).
CAPTURES = {"4.17": DATA, "4.20": DATA / "xen-4.20"}
NAMES = (
    "basic.img",
    "watches.img",
    "domains.img",
    "pending_input.img",
    "pending_output.img",
    "many_watches.img",
    "domains5.img",
    "big_tree.img",
    "ring_pending.img",
)
#: Fresh captures whose two versions hold the same content: a race (which client the daemon
#: accepts first) or the kernel's socket buffer make the other three differ. (basic,
#: watches and domains are the shared dumps: test_convert_of_the_shared_dumps_...)
SAME_CONTENT = ("many_watches.img", "domains5.img", "ring_pending.img")
OTHER = {"4.17": "4.20", "4.20": "4.17"}


def _shared(version: str, name: str) -> Path:
    return PeerInstall.locate(version).peer_dir / "images" / name


@pytest.mark.parametrize("version", CAPTURES)
@pytest.mark.parametrize("name", NAMES)
def test_a_dump_verifies_for_its_version_and_inspects(version: str, name: str) -> None:
    image = CAPTURES[version] / name
    verified = xsmig_ok("verify", "--target", f"xen-{version}", str(image))
    assert "Traceback" not in verified.stderr
    inspected = xsmig_ok("inspect", str(image))
    assert "header: version 1, little endian" in inspected.stdout


def _view(daemon: RunningDaemon) -> tuple[object, ...]:
    listing = daemon.client("xenstore-ls", "-f", "-p", "/", check=False)
    with daemon.connect() as dom0:
        introduced = [dom0.call(Op.IS_DOMAIN_INTRODUCED, str(d)).payload for d in range(8)]
    return listing.returncode, listing.stdout, introduced


@pytest.mark.parametrize("name", NAMES)
def test_a_420_dump_looks_the_same_in_its_daemon_and_in_the_mock(
    name: str, restored_xenstored_420: RestoreImage
) -> None:
    """As tests/differential/test_restore.py does for the 4.17 captures."""
    image = CAPTURES["4.20"] / name
    real = restored_xenstored_420(image.read_bytes())
    with running_mockd(args=("--restore", str(image))) as mock:
        assert _view(mock) == _view(real)


@pytest.mark.parametrize("version", CAPTURES)
@pytest.mark.parametrize("name", SAME_CONTENT)
def test_convert_to_the_other_version_is_byte_exact(
    version: str, name: str, tmp_path: Path
) -> None:
    """Both captures come from daemons the tests start the same way (peerlib: no log file
    or tdb opened before the socket), which hold the same fds in both versions (socket 3,
    evtchn 6): --keep-fds, as the renumbering is for the standard layouts of each version."""
    other = OTHER[version]
    out = tmp_path / name
    result = xsmig_ok(
        "convert",
        *("--keep-fds", "--target", f"xen-{other}", str(CAPTURES[version] / name), str(out)),
    )
    assert out.read_bytes() == (CAPTURES[other] / name).read_bytes(), result.stderr


@pytest.mark.parametrize("name", ("basic.img", "watches.img", "domains.img"))
def test_convert_of_the_shared_dumps_renumbers_the_fds(name: str, tmp_path: Path) -> None:
    """shared/peer* dumps come from daemons started by the Debian-like scripts: 4.17 holds
    socket 4 / evtchn 7 / clients from 8, 4.20 one lower (no tdb file)."""
    for version, other in OTHER.items():
        out = tmp_path / f"{version}-{name}"
        result = xsmig_ok(
            "convert", "--target", f"xen-{other}", str(_shared(version, name)), str(out)
        )
        assert out.read_bytes() == _shared(other, name).read_bytes()
        assert f"fd numbers of xen-{version}'s process renumbered as xen-{other}" in result.stderr
    kept = tmp_path / "kept.img"
    xsmig_ok("convert", "--keep-fds", "--target", "xen-4.20", str(_shared("4.17", name)), str(kept))
    assert kept.read_bytes() != _shared("4.20", name).read_bytes()


@pytest.mark.parametrize("name", ("basic.img", "watches.img", "domains.img"))
def test_diff_of_the_two_versions_compares_state_not_fds(name: str) -> None:
    a, b = str(_shared("4.17", name)), str(_shared("4.20", name))
    same = xsmig("diff", a, b)
    assert (same.returncode, same.stdout) == (0, ""), same.stdout + same.stderr
    assert "fd numbers differ (process artefacts, not compared; --fds lists them)" in same.stderr
    shown = xsmig("diff", "--fds", a, b)
    assert shown.returncode == 1
    lines = shown.stdout.splitlines()
    assert "fd GLOBAL_DATA: rw-socket-fd: A 4, B 3" in lines
    assert "fd GLOBAL_DATA: evtchn-fd: A 7, B 6" in lines
    assert "fd socket fd 8: fd: A 8, B 7" in lines
    assert all(line.startswith("fd ") for line in lines), lines


def test_diff_still_reports_a_real_difference_between_versions(tmp_path: Path) -> None:
    """watches.img vs basic.img of the other version: the watches are reported, on the
    socket connections matched in order, not as connections only in A or B."""
    result = xsmig("diff", str(_shared("4.17", "basic.img")), str(_shared("4.20", "watches.img")))
    assert result.returncode == 1
    assert "only in" in result.stdout and "GLOBAL_DATA" not in result.stdout
