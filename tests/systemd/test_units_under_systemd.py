"""The shipped units, run by a real systemd (PID 1 of a volatile nspawn container).

One container for the module (fixture ``container``): the mock unit stands in for
xenstored.service, xsmig.service runs the service with the example configuration, and the
tests go through what an operator does: start, status, reload, a stuck service, stop in the
middle of a snapshot, the timer, the journal.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from peerlib import wait_until

from .conftest import NO_XEN_DROPIN
from .nspawn import REPO, Container

CONFIG = "/etc/xsmig/config.toml"
SNAPSHOTS = "/var/lib/xsmig/snapshots"
MOCK_SOCKET = "/run/xenstored/socket"


def journal_entries(container: Container, unit: str) -> list[dict[str, str]]:
    out = container.journal(unit, "-o", "json", "--output-fields=MESSAGE,PRIORITY,_TRANSPORT")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def service_lines(container: Container, unit: str) -> list[tuple[int, str]]:
    """(priority, message) of what the unit's own process wrote (not systemd's lines)."""
    return [
        (int(entry["PRIORITY"]), entry["MESSAGE"])
        for entry in journal_entries(container, unit)
        if entry.get("_TRANSPORT") == "stdout" and isinstance(entry.get("MESSAGE"), str)
    ]


def set_config(container: Container, *replacements: tuple[str, str]) -> None:
    """The example configuration with each (old, new) line replaced."""
    text = (REPO / "config.example.toml").read_text()
    for old, new in replacements:
        assert old in text.splitlines(), old
        text = text.replace(old, new)
    container.write(CONFIG, text)


def snapshot_files(container: Container) -> list[str]:
    directory = container.path(SNAPSHOTS)
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


@pytest.fixture
def running(container: Container) -> Iterator[Container]:
    """The mock (as xenstored.service) and xsmig.service running on the example config."""
    set_config(container)
    container.run("systemctl", "enable", "--now", "xsmig-mockd.service")
    container.run("systemctl", "restart", "xsmig.service")
    yield container
    container.run("systemctl", "stop", "xsmig.service", check=False)
    container.run("rm", "-rf", SNAPSHOTS, check=False)


def test_mock_unit_is_xenstored_and_ready_when_listening(running: Container) -> None:
    assert running.show("xenstored.service", "Id") == "xsmig-mockd.service"
    assert running.show("xenstored.service", "Type") == "notify"
    assert running.show("xenstored.service", "ActiveState") == "active"
    # READY=1 came with the status line, after the socket was listening.
    assert running.show("xenstored.service", "StatusText") == f"listening on {MOCK_SOCKET}"
    env = ["env", f"XENSTORED_PATH={MOCK_SOCKET}"]
    running.run(*env, "xenstore-write", "/tool/check", "yes")
    assert running.run(*env, "xenstore-read", "/tool/check").stdout == "yes\n"


def test_service_is_active_only_after_ready(running: Container) -> None:
    assert running.show("xsmig.service", "ActiveState") == "active"
    assert running.show("xsmig.service", "StatusText").startswith("idle")
    status = json.loads(running.run("xsmig", "ctl", "status", "--json").stdout)
    assert status["pid"] == int(running.show("xsmig.service", "MainPID"))
    # systemd logged "Started" only after the service said it was ready.
    messages = [entry.get("MESSAGE", "") for entry in journal_entries(running, "xsmig.service")]
    ready = max(i for i, m in enumerate(messages) if m.startswith("service: ready"))
    started = max(i for i, m in enumerate(messages) if m.startswith("Started xsmig.service"))
    assert ready < started


def test_reload_applies_a_good_file_and_keeps_the_old_one_on_a_bad_one(
    running: Container,
) -> None:
    pid = running.show("xsmig.service", "MainPID")
    set_config(running, ("interval = 3600.0", "interval = 0"))
    running.run("systemctl", "reload", "xsmig.service")
    wait_until(
        lambda: (
            json.loads(running.run("xsmig", "ctl", "status", "--json").stdout)["next_scheduled"]
            is None
        ),
        60,
        "the reload to be applied",
    )
    set_config(running, ("keep_count = 24", "keep_count = 0"))
    running.run("systemctl", "reload", "xsmig.service")
    running.wait_show("xsmig.service", "StatusText", lambda s: "keep_count" in s)
    assert running.show("xsmig.service", "ActiveState") == "active"
    assert running.show("xsmig.service", "MainPID") == pid
    errors = [m for p, m in service_lines(running, "xsmig.service") if p == 3]
    assert any("snapshots.keep_count" in m for m in errors), errors


def test_journal_has_one_line_per_event_with_its_priority(running: Container) -> None:
    running.write(CONFIG, "[nonsense]\n")
    running.run("systemctl", "reload", "xsmig.service")
    running.wait_show("xsmig.service", "StatusText", lambda s: "nonsense" in s)
    lines = service_lines(running, "xsmig.service")
    assert (6, f"service: xenstored at {MOCK_SOCKET} accepts connections") in lines
    assert any(p == 3 and m.startswith("service: ") and "nonsense" in m for p, m in lines)
    for _priority, message in lines:
        assert not message.startswith("<"), message  # journald took the prefix
        assert "\n" not in message
    problems = running.journal("xsmig.service", "-p", "warning", "-o", "cat")
    assert "accepts connections" not in problems
    assert "nonsense" in problems


def test_a_stuck_service_is_restarted_by_the_watchdog(running: Container) -> None:
    dropin = "/etc/systemd/system/xsmig.service.d/watchdog.conf"
    # A stopped process stands in for a stuck event loop; it ignores SIGABRT until killed,
    # so the abort timeout is made short too.
    running.write(dropin, "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\nRestartSec=1s\n")
    running.run("systemctl", "daemon-reload")
    try:
        running.run("systemctl", "restart", "xsmig.service")
        pid = running.show("xsmig.service", "MainPID")
        restarts = int(running.show("xsmig.service", "NRestarts"))
        running.run("kill", "-STOP", pid)
        running.wait_show("xsmig.service", "NRestarts", lambda n: int(n) > restarts, 90)
        running.wait_show("xsmig.service", "ActiveState", "active", 60)
        assert running.show("xsmig.service", "MainPID") != pid
        messages = [e.get("MESSAGE", "") for e in journal_entries(running, "xsmig.service")]
        assert any("Watchdog timeout" in m for m in messages), messages[-20:]
    finally:
        running.run("rm", "-f", dropin)
        running.run("systemctl", "daemon-reload")


def test_stop_during_a_snapshot_leaves_no_file(running: Container) -> None:
    set_config(running, ('source = "auto"', 'source = "wire"'))
    running.run("systemctl", "reload", "xsmig.service")
    running.wait_show("xsmig.service", "StatusText", lambda s: s.startswith("idle"))
    mock_pid = running.show("xenstored.service", "MainPID")
    running.run("kill", "-STOP", mock_pid)  # holds the walk at its first request
    client = running.popen("xsmig", "ctl", "snapshot")
    try:
        wait_until(
            lambda: any(name.endswith(".tmp") for name in snapshot_files(running)),
            60,
            "the snapshot's temporary file",
        )
        running.run("systemctl", "stop", "xsmig.service")
        assert snapshot_files(running) == []
        assert client.wait(60) == 1
    finally:
        running.run("kill", "-CONT", mock_pid)
        if client.poll() is None:
            client.kill()
            client.wait()


def test_timer_fires_a_snapshot(running: Container) -> None:
    dropin = "/etc/systemd/system/xsmig-snapshot.timer.d/soon.conf"
    running.write(
        dropin, "[Timer]\nOnCalendar=\nOnActiveSec=1s\nAccuracySec=1ms\nRandomizedDelaySec=0\n"
    )
    running.run("systemctl", "daemon-reload")
    try:
        running.run("systemctl", "start", "xsmig-snapshot.timer")
        running.wait_show("xsmig-snapshot.service", "Result", "success")
        running.wait_show(
            "xsmig-snapshot.service", "ExecMainExitTimestampMonotonic", lambda t: t != "0"
        )
        assert running.show("xsmig-snapshot.service", "ExecMainStatus") == "0"
        names = snapshot_files(running)
        images = [n for n in names if n.endswith(".img")]
        assert len(images) == 1 and f"{images[0]}.manifest.json" in names, names
        image = running.path(f"{SNAPSHOTS}/{images[0]}")
        verify = subprocess.run(
            [str(REPO / ".venv" / "bin" / "xsmig"), "verify", str(image)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0, verify.stderr
    finally:
        running.run("systemctl", "stop", "xsmig-snapshot.timer", check=False)
        running.run("rm", "-f", dropin)
        running.run("systemctl", "daemon-reload")


def test_service_runs_only_on_dom0_without_the_drop_in(container: Container) -> None:
    dropin = "/etc/systemd/system/xsmig.service.d/no-xen.conf"
    container.run("rm", "-f", dropin)
    container.run("systemctl", "daemon-reload")
    try:
        container.run("systemctl", "start", "xsmig.service")
        assert container.show("xsmig.service", "ActiveState") == "inactive"
        assert container.show("xsmig.service", "ConditionResult") == "no"
        # Past the path condition, the dom0 check (ExecCondition=) still says no.
        container.write(dropin, "[Unit]\nConditionPathExists=\n")
        container.run("systemctl", "daemon-reload")
        container.run("systemctl", "start", "xsmig.service")
        assert container.show("xsmig.service", "ActiveState") == "inactive"
        assert container.show("xsmig.service", "Result") in {"success", "exec-condition"}
        assert container.show("xsmig.service", "ExecMainPID") == "0"
    finally:
        container.write(dropin, NO_XEN_DROPIN)
        container.run("systemctl", "daemon-reload")
