"""Defaults that load: --help, docs and behaviour agree. A default snapshot is the
full-fidelity spec image (version 2); the help names the --target for a real successor and
says xen-4.21 is unproven; a --target xen-* image of the mock is one the real loader takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from peerlib import REPO_ROOT, MockDaemon, PeerInstall, RestoreImage
from versionlib import xsmig, xsmig_ok

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.profiles import PROFILES, default_version


def _header(path: Path) -> tuple[int, bool]:
    header, _ = decode_image(path.read_bytes())
    return header.version, header.big_endian


def test_a_default_snapshot_is_the_full_fidelity_spec_image(
    mockd: MockDaemon, tmp_path: Path
) -> None:
    for source in ("introspect", "wire"):
        out = tmp_path / f"{source}.img"
        xsmig_ok(
            "snapshot", "--socket", str(mockd.socket_path), "--source", source, "--output", str(out)
        )
        assert _header(out) == (2, False), source


@pytest.mark.parametrize("command", ("snapshot", "convert", "verify"))
def test_help_names_the_real_targets_and_the_unproven_one(command: str) -> None:
    text = " ".join(xsmig_ok(command, "--help").stdout.split())
    assert "xen-4.17 or xen-4.20" in text and "xen-4.21 is from its source only, unproven" in text
    if command == "snapshot":
        assert "Default spec: the full-fidelity image (version 2)" in text
        assert "2 for spec, 1 for xen-4.17 and xen-4.20" in text


def test_docs_say_what_the_code_does() -> None:
    """README's version matrix and docs/cli.md name the same defaults as the table."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert "| xen-4.20 |" in readme and "| xen-4.17 |" in readme
    assert default_version(PROFILES["spec"]) == 2
    assert default_version(PROFILES["xen-4.17"]) == default_version(PROFILES["xen-4.20"]) == 1
    assert not PROFILES["xen-4.21"].proven


def test_a_spec_version_1_image_is_refused_for_a_real_target(
    mockd: MockDaemon, tmp_path: Path
) -> None:
    """spec images are not for a C loader: verify names what it lacks (no crash to find)."""
    out = tmp_path / "spec1.img"
    xsmig_ok("snapshot", "--socket", str(mockd.socket_path), "--version", "1", "--output", str(out))
    for target in ("xen-4.17", "xen-4.20"):
        result = xsmig("verify", "--target", target, str(out))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"{target}: evtchn-fd -1" in result.stderr or "dom0's ring" in result.stderr


def test_a_real_target_of_the_mock_loads_with_defaults(
    mockd: MockDaemon, referee: PeerInstall, referee_restore: RestoreImage, tmp_path: Path
) -> None:
    """The README example: snapshot --target xen-X of the mock, no fd options."""
    out = tmp_path / "lu.img"
    xsmig_ok(
        "snapshot",
        "--socket",
        str(mockd.socket_path),
        "--target",
        referee.label,
        "--output",
        str(out),
    )
    assert _header(out) == (1, False)
    converted = tmp_path / "converted.img"
    spec = tmp_path / "spec.img"
    xsmig_ok("snapshot", "--socket", str(mockd.socket_path), "--output", str(spec))
    xsmig_ok("convert", "--lossy", "--target", referee.label, str(spec), str(converted))
    for image in (out, converted):
        restored = referee_restore(image.read_bytes())
        assert restored.client("xenstore-read", "/tool/xenstored").returncode == 0
