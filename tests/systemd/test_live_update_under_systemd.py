"""A live update of the mock unit (standing in for xenstored.service) under a real systemd.

What an operator does on a dom0: the daemon runs as its unit (Type=notify), a client holds a
watch, and ``xenstore-control live-update -t SECS $(command -v xsmig)`` (Xen 4.17's own tool:
``-f BIN``, then ``-s``). The unit must stay one active service with the same main pid (the
pid holder, docs/liveupdate.md "One service through the update"), the client's connection
must survive (its watch fires after the update), the journal must tell the handover; a
broken successor leaves the unit active and serving with a one-line reason; ``systemctl
stop`` afterwards leaves no process of the unit behind.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from peerlib import PeerInstall, wait_until

from .nspawn import Container, booted

UNIT = "xenstored.service"
SOCKET = "/run/xenstored/socket"
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def machine(peer_install: PeerInstall) -> Iterator[Container]:
    """A container with xsmig's units and, read-only, Xen 4.17's ``xenstore-control``."""
    with booted("xsmig-lu", binds_ro=[peer_install.cache]) as container:
        container.install_xsmig()
        container.run("systemctl", "enable", "xsmig-mockd.service")
        yield container


@pytest.fixture
def mock(machine: Container) -> Iterator[Container]:
    """The mock unit freshly started (a previous test's update leaves a pid holder)."""
    machine.run("systemctl", "restart", UNIT)
    machine.wait_show(UNIT, "ActiveState", "active")
    yield machine
    machine.run("systemctl", "stop", UNIT, check=False)


def xs(container: Container, tool: str, *args: str) -> str:
    """Debian's ``xenstore-*`` client tool against the mock; its output."""
    return container.run("env", f"XENSTORED_PATH={SOCKET}", tool, *args).stdout


def live_update(
    container: Container, peer: PeerInstall, binary: str
) -> subprocess.CompletedProcess[str]:
    """``xenstore-control live-update -t 30 BINARY`` as an operator types it (a shell)."""
    env = f"XENSTORED_PATH={SOCKET} LD_LIBRARY_PATH={peer.libs}"
    command = f'env {env} {peer.control_bin} live-update -t 30 "{binary}"'
    return container.run("sh", "-c", command, check=False, timeout=TIMEOUT)


class Watcher:
    """``xenstore-watch PATH`` in the container: one line per event, read with a timeout."""

    def __init__(self, container: Container, path: str) -> None:
        self.process = container.popen("env", f"XENSTORED_PATH={SOCKET}", "xenstore-watch", path)
        self.buffer = b""

    def line(self, timeout: float = 30.0) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, f"xenstore-watch printed nothing in {timeout} s"
            data = os.read(fd, 4096)
            assert data, "xenstore-watch ended"
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        """Kill the watcher (nsenter's child, by its host pid) and nsenter."""
        nsenter = self.process.pid
        with suppress(FileNotFoundError):
            children = Path(f"/proc/{nsenter}/task/{nsenter}/children").read_text().split()
            for pid in children:
                with suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def watcher(mock: Container) -> Iterator[Watcher]:
    """A client holding a watch on /lu, its initial event already seen."""
    xs(mock, "xenstore-write", "/lu/before", "1")
    watching = Watcher(mock, "/lu")
    try:
        assert watching.line() == "/lu"
        yield watching
    finally:
        watching.close()


def unit_processes(container: Container) -> list[int]:
    """Every pid in the unit's cgroup (as the container sees them)."""
    # The alias does not show the property; the unit's own name does.
    group = container.show("xsmig-mockd.service", "ControlGroup")
    if not group:
        return []
    # cgroup v2 alone, or systemd's hybrid layout (v2 mounted at unified/).
    # Read inside: the file lists pids as the reader's pid namespace numbers them.
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        procs = f"{root}{group}/cgroup.procs"
        if container.path(procs).exists():
            return sorted(int(pid) for pid in container.run("cat", procs).stdout.split())
    return []


def mock_processes(container: Container) -> list[str]:
    """Command lines of every xsmig process (daemon, successor, pid holder) in the container."""
    ps = container.run("ps", "-eo", "pid=,args=").stdout.splitlines()
    return [line for line in ps if "xsmig" in line]


def this_run_journal(container: Container, invocation: str) -> str:
    """The unit's journal for one start (its processes' lines and systemd's about it)."""
    matches = [f"_SYSTEMD_INVOCATION_ID={invocation}", "+", f"INVOCATION_ID={invocation}"]
    return container.run("journalctl", "--no-pager", "-o", "cat", *matches).stdout


def test_update_keeps_the_unit_active_its_pid_and_the_clients_watch(
    mock: Container, watcher: Watcher, peer_install: PeerInstall
) -> None:
    main_pid = mock.show(UNIT, "MainPID")
    result = live_update(mock, peer_install, "$(command -v xsmig)")
    assert result.returncode == 0, result.stdout + result.stderr

    assert mock.show(UNIT, "ActiveState") == "active"
    assert mock.show(UNIT, "SubState") == "running"
    assert mock.show(UNIT, "MainPID") == main_pid
    # The held pid and the serving successor are the unit's two processes.
    mock.wait_show(UNIT, "MainPID", main_pid)
    procs = unit_processes(mock)
    assert int(main_pid) in procs and len(procs) == 2, procs

    # The watching client kept its connection: its watch fires for a write after the update.
    xs(mock, "xenstore-write", "/lu/after", "2")
    assert watcher.line() == "/lu/after"
    assert xs(mock, "xenstore-read", "/lu/before") == "1\n"

    journal = this_run_journal(mock, mock.show(UNIT, "InvocationID"))
    successor = next(pid for pid in procs if pid != int(main_pid))
    assert f"live update: pid {successor} serves" in journal, journal
    assert "live update restored" in journal, journal
    # The successor does not talk to systemd in the main pid's name.
    assert "reception only permitted for main PID" not in journal, journal


@pytest.mark.parametrize(
    ("binary", "reason"),
    [
        ("/bin/false", "the successor closed the handover channel before greeting"),
        ("/usr/bin/xsmig-no-such-binary", "File not accessible."),
    ],
    ids=["exits", "missing"],
)
def test_broken_successor_leaves_the_unit_serving_with_one_line(
    mock: Container, watcher: Watcher, peer_install: PeerInstall, binary: str, reason: str
) -> None:
    main_pid = mock.show(UNIT, "MainPID")
    procs = unit_processes(mock)
    result = live_update(mock, peer_install, binary)
    assert result.returncode != 0
    said = (result.stdout + result.stderr).strip()
    assert reason in said, said
    assert len([line for line in said.splitlines() if reason in line]) == 1, said

    assert mock.show(UNIT, "ActiveState") == "active"
    assert mock.show(UNIT, "MainPID") == main_pid
    assert unit_processes(mock) == procs
    xs(mock, "xenstore-write", "/lu/still", "3")
    assert watcher.line() == "/lu/still"


def test_stop_after_an_update_leaves_no_process(mock: Container, peer_install: PeerInstall) -> None:
    for _ in range(2):  # the second handover goes from a successor to the next one
        result = live_update(mock, peer_install, "/usr/bin/xsmig")
        assert result.returncode == 0, result.stdout + result.stderr
    # The daemon that handed over the second time exits right after its BYE.
    wait_until(lambda: len(unit_processes(mock)) == 2, 30, "the holder and one daemon")
    invocation = mock.show(UNIT, "InvocationID")
    mock.run("systemctl", "stop", UNIT)
    assert mock.show(UNIT, "ActiveState") == "inactive"
    assert mock.show(UNIT, "MainPID") == "0"
    assert mock.show(UNIT, "Result") == "success"
    assert unit_processes(mock) == []
    assert mock_processes(mock) == []
    # The stop went to the serving daemon, which said so.
    journal = this_run_journal(mock, invocation)
    assert journal.count("live update restored") == 2, journal
    assert "SIGTERM, stopping" in journal, journal
