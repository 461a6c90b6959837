"""``xsmig ctl`` failures: one line on stderr and the documented exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xsmig_daemon.commands.ctl_format import format_result

REPO = Path(__file__).resolve().parents[2]


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "ctl", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_no_service_listening_exits_1(short_dir: Path) -> None:
    result = ctl("--socket", str(short_dir / "none.sock"), "status")
    assert result.returncode == 1
    assert result.stderr == f"xsmig ctl: {short_dir / 'none.sock'}: No such file or directory\n"


def test_bad_configuration_exits_2(short_dir: Path) -> None:
    config = short_dir / "c.toml"
    config.write_text("[control]\nsocket = 5\n")
    result = ctl("--config", str(config), "status")
    assert result.returncode == 2
    assert result.stderr == "xsmig ctl: control.socket: expected a string, got integer\n"


def test_usage_errors_exit_2() -> None:
    assert ctl("explode").returncode == 2
    assert ctl("snapshot", "--target", "xen-9").returncode == 2


def test_status_for_a_person_has_one_named_line_per_fact() -> None:
    text = format_result(
        "status",
        {
            "pid": 42,
            "uptime": 7.4,
            "config": "/etc/xsmig/config.toml",
            "xenstored": "/run/xenstored/socket",
            "operation": None,
            "progress": None,
            "last_snapshot": {"image": "/var/lib/xsmig/snapshots/a.img", "finished": 0},
            "last_error": None,
            "next_scheduled": None,
            "counters": {"snapshots": 1, "failed": 0, "pruned": 0, "live_updates": 0},
            "lu_hook_problems": ["lu_hook.wrapper: missing"],
        },
    )
    assert text.splitlines() == [
        "service:         pid 42, up 7 s",
        "config:          /etc/xsmig/config.toml",
        "xenstored:       /run/xenstored/socket",
        "doing:           idle",
        "last snapshot:   /var/lib/xsmig/snapshots/a.img (1970-01-01 00:00:00 UTC)",
        "last error:      none",
        "next scheduled:  off",
        "counters:        failed 0, live updates 0, pruned 0, snapshots 1",
        "lu-hook problem: lu_hook.wrapper: missing",
    ]
