"""``systemd-analyze verify systemd/*`` passes.

On a host where xsmig is installed (/usr/bin/xsmig) and Xen provides xenstored.service the
command runs as is. Here, inside a private mount namespace, /usr/bin gets an overlay holding
an ``xsmig`` (the one under test) and xenstored.service is xsmig-mockd.service under its
install alias -- exactly what enabling the mock unit creates on a host without Xen.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "systemd").iterdir())


def test_units_are_the_expected_set() -> None:
    assert [p.name for p in UNITS] == [
        "xsmig-mockd.service",
        "xsmig-snapshot.service",
        "xsmig-snapshot.timer",
        "xsmig.service",
    ]


def verify_units(short_dir: Path, pattern: str) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify PATTERN`` (a shell glob) from the repository root."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze missing: apt-get install systemd"
    xsmig = Path(sys.executable).with_name("xsmig")
    assert xsmig.is_file(), f"{xsmig} missing: pip install -e ."
    upper, work, units = short_dir / "up", short_dir / "work", short_dir / "units"
    for directory in (upper, work, units):
        directory.mkdir()
    (upper / "xsmig").symlink_to(xsmig)
    (units / "xenstored.service").symlink_to(REPO / "systemd" / "xsmig-mockd.service")
    script = (
        f"mount -t overlay overlay -o lowerdir=/usr/bin,upperdir={upper},workdir={work} "
        f"/usr/bin && exec {analyze} verify {pattern}"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        cwd=REPO,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_UNIT_PATH": f"{units}:"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_systemd_analyze_verify_passes(short_dir: Path) -> None:
    result = verify_units(short_dir, "systemd/*")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_the_same_check_catches_a_broken_unit(short_dir: Path) -> None:
    broken = short_dir / "broken.service"
    text = (REPO / "systemd" / "xsmig.service").read_text()
    broken.write_text(text.replace("/usr/bin/xsmig serve", "/usr/bin/xsmig-nonexistent serve"))
    result = verify_units(short_dir, str(broken))
    assert result.returncode != 0
    assert "xsmig-nonexistent is not executable" in result.stderr


def test_main_unit_has_the_required_settings() -> None:
    text = (REPO / "systemd" / "xsmig.service").read_text()
    for line in (
        "Type=notify",
        "After=xenstored.service",
        "Requires=xenstored.service",
        "ConditionPathExists=/proc/xen/capabilities",
        "ProtectSystem=strict",
        "ReadWritePaths=/run/xsmig /var/lib/xsmig",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/xen/xenbus rw",
        "WatchdogSec=30s",
    ):
        assert line in text.splitlines(), line
    assert "PrivateDevices" not in text.replace("Not PrivateDevices=", "")


def test_every_unit_has_exposure_at_most_2() -> None:
    """``systemd-analyze security --offline=true``: the overall exposure of every service."""
    for unit in (p for p in UNITS if p.suffix == ".service"):
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_COLORS": "0"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        last = (result.stdout.strip().splitlines() or [""])[-1]
        assert f"Overall exposure level for {unit.name}:" in last, result.stdout + result.stderr
        exposure = float(last.split(":", 1)[1].split()[0])
        assert exposure <= 2.0, f"{unit.name}: {last}"


def test_service_units_run_only_where_they_belong() -> None:
    main = (REPO / "systemd" / "xsmig.service").read_text().splitlines()
    assert "ExecCondition=/usr/bin/grep -qs control_d /proc/xen/capabilities" in main
    mock = (REPO / "systemd" / "xsmig-mockd.service").read_text().splitlines()
    assert "Type=notify" in mock
    assert "ExecCondition=/bin/sh -c '! grep -qs control_d /proc/xen/capabilities'" in mock
