"""A throwaway systemd, booted as PID 1 in ``systemd-nspawn --volatile=yes``, for unit tests.

Why a container: systemd must be PID 1 to run units, and booting it on the host's own file
system would let its tmpfiles service empty the host's /tmp. With ``--volatile=yes`` the
container's root is a fresh tmpfs holding only the host's /usr (read-only); the checkout (with
its venv) is bound in read-only at the same path, so the venv's absolute paths still work.

What this machine needs (found by trying, Debian 12, systemd 252, inside a docker container
with no systemd on the host): ``--register=no`` (no systemd-machined) **and** ``--keep-unit``
(without it nspawn asks the host's systemd over D-Bus for a scope: "Failed to open system
bus"); ``--private-network`` keeps the container off the host's network. Commands run inside
with ``nsenter`` into PID 1's namespaces (``machinectl shell`` needs machined).

The units are installed unchanged: ``/usr/bin/xsmig`` (what they call) comes from an overlay
on /usr/bin inside the container's mount namespace, holding a symlink to the venv's script.

The container is always stopped: SIGTERM to nspawn (a clean poweroff), and if that does not
end it in time, SIGKILL to the container's PID 1 and to nspawn, by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from peerlib import wait_until

REPO = Path(__file__).resolve().parents[2]
VENV_XSMIG = Path(sys.executable).with_name("xsmig")
ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
BOOT_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


class ContainerError(AssertionError):
    pass


class Container:
    """A booted systemd in a volatile nspawn container. Use ``booted()``."""

    def __init__(self, name: str, log_path: Path, binds: Sequence[Path]) -> None:
        self.name = name
        self.log_path = log_path
        self.binds = list(binds)
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.leader: int | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        nspawn = shutil.which("systemd-nspawn")
        assert nspawn is not None, "systemd-nspawn missing: apt-get install systemd-container"
        argv = [
            nspawn,
            "--quiet",
            "--volatile=yes",
            "--directory=/",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--private-network",
            f"--machine={self.name}",
            "--console=pipe",
        ]
        argv += [f"--bind-ro={path}" for path in self.binds]
        with self.log_path.open("wb") as log:
            self.nspawn = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._find_leader, BOOT_TIMEOUT, "the container's PID 1")
        wait_until(self._booted, BOOT_TIMEOUT, "systemd to finish booting")

    def _find_leader(self) -> bool:
        assert self.nspawn is not None
        if self.nspawn.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited early:\n{self.log_tail()}")
        children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
        for pid in children.read_text().split():
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except FileNotFoundError:
                continue
            if comm == "systemd":
                self.leader = int(pid)
                return True
        return False

    def _booted(self) -> bool:
        # --wait blocks until start-up is over; before PID 1's bus exists it fails at once.
        result = self.run("systemctl", "is-system-running", "--wait", check=False)
        return result.stdout.strip() in {"running", "degraded"}

    def stop(self) -> None:
        nspawn, leader = self.nspawn, self.leader
        if nspawn is None:
            return
        if nspawn.poll() is None:
            nspawn.send_signal(signal.SIGTERM)  # nspawn powers the container off
            try:
                nspawn.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                if leader is not None:
                    _kill(leader)  # PID 1 of the namespace: takes every process in it
                _kill(nspawn.pid)
                nspawn.wait(STOP_TIMEOUT)
        self.nspawn = self.leader = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- inside the container ----------------------------------------------------------
    def run(
        self, *argv: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the container's namespaces; fail with its output if ``check``."""
        assert self.leader is not None, "container not started"
        command = ["nsenter", f"--target={self.leader}", "-m", "-u", "-i", "-n", "-p", "--"]
        result = subprocess.run(
            [*command, *argv],
            env=ENV,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ContainerError(
                f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        """Start ``argv`` in the container without waiting; the caller waits for it."""
        assert self.leader is not None, "container not started"
        command = ["nsenter", f"--target={self.leader}", "-m", "-u", "-i", "-n", "-p", "--"]
        return subprocess.Popen(
            [*command, *argv],
            env=ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def path(self, inside: str) -> Path:
        """``inside`` (an absolute path in the container) as seen from the host."""
        assert self.leader is not None
        return Path(f"/proc/{self.leader}/root") / inside.lstrip("/")

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def show(self, unit: str, prop: str) -> str:
        """One property of ``unit`` (``systemctl show -P``)."""
        return self.run("systemctl", "show", "-P", prop, unit).stdout.strip()

    def wait_show(self, unit: str, prop: str, wanted: object, timeout: float = 60.0) -> None:
        """Wait until ``systemctl show -P PROP UNIT`` satisfies ``wanted`` (a value or a test)."""

        def holds() -> bool:
            value = self.show(unit, prop)
            return bool(wanted(value)) if callable(wanted) else value == wanted

        wait_until(holds, timeout, f"{unit} {prop} to be {wanted}")

    def overlay(
        self, target: str, name: str, links: dict[str, str], texts: dict[str, str] | None = None
    ) -> None:
        """Mount an overlay on ``target`` inside the container adding symlinks (relative path
        -> link target) and regular files (relative path -> text)."""
        upper, work = f"/var/tmp/overlay/{name}/up", f"/var/tmp/overlay/{name}/work"
        self.run("mkdir", "-p", upper, work)
        for relative, content in [*links.items(), *(texts or {}).items()]:
            host_path = self.path(f"{upper}/{relative}")
            host_path.parent.mkdir(parents=True, exist_ok=True)
            if relative in links:
                host_path.symlink_to(content)
            else:
                host_path.write_text(content)
        options = f"lowerdir={target},upperdir={upper},workdir={work}"
        self.run("mount", "-t", "overlay", "overlay", "-o", options, target)

    def install_xsmig(self, xsmig: Path = VENV_XSMIG) -> None:
        """Make ``/usr/bin/xsmig`` exist (overlay on the read-only /usr/bin) and install the
        shipped units unchanged into /etc/systemd/system."""
        self.overlay("/usr/bin", "usrbin", {"xsmig": str(xsmig)})
        self._venv_on_system_python()
        for unit in sorted((REPO / "systemd").iterdir()):
            self.write(f"/etc/systemd/system/{unit.name}", unit.read_text())
        self.run("systemctl", "daemon-reload")

    def journal(self, unit: str, *options: str) -> str:
        return self.run("journalctl", "--no-pager", "-u", unit, *options).stdout

    def _venv_on_system_python(self) -> None:
        """A venv made from an interpreter outside /usr (pyenv under /root, say) cannot run
        in the units: ProtectHome= hides /root. Point it at the system's python of the same
        minor version instead (xsmig's dependencies are pure Python)."""
        if Path(sys.base_prefix).is_relative_to("/usr"):
            return
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        system_python = f"/usr/bin/python{version}"
        assert Path(system_python).exists(), f"{system_python} missing: apt-get install python3"
        cfg = (Path(sys.prefix) / "pyvenv.cfg").read_text().splitlines()
        cfg = [("home = /usr/bin" if line.startswith("home") else line) for line in cfg]
        links = {f"bin/{name}": system_python for name in ("python", "python3", f"python{version}")}
        self.overlay(sys.prefix, "venv", links, {"pyvenv.cfg": "\n".join(cfg) + "\n"})


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextmanager
def booted(name_prefix: str = "xsmig-test", binds_ro: Sequence[Path] = ()) -> Iterator[Container]:
    """Boot a container, yield it, and stop it however the body ends. ``binds_ro``: more
    host directories to see, read-only, at the same path (e.g. a real Xen's client tools)."""
    workdir = Path(tempfile.mkdtemp(prefix="xsnspawn", dir="/tmp"))
    binds = [REPO, *binds_ro]
    if not Path(sys.prefix).is_relative_to(REPO):
        binds.append(Path(sys.prefix))  # the venv, when it lives outside the checkout
    container = Container(f"{name_prefix}-{os.getpid()}", workdir / "console.log", binds)
    try:
        container.start()
        yield container
    finally:
        container.stop()
        shutil.rmtree(workdir, ignore_errors=True)
