"""The real C xenstored (Xen 4.17, Xen 4.20) and its client tools as test peers.

Everything here drives the binaries that ``shared/peer`` (4.17) and ``shared/peer-4.20``
(``../shared`` next to the repository, or ``$XSMIG_SHARED``) fetch into their caches
(``$XEN_PEER_CACHE``, ``$XEN_PEER_NEXT_CACHE``; ``PEER_VERSIONS`` lists them): start the
daemon in a fresh short run directory, run the client tools against it, capture an image
by a real live update, start the daemon in restore mode on an image written by someone
else, and speak to it as dom0 over its socket or as an introduced guest over that guest's
ring page (wireclient.py, ringclient.py). The mock (``xsmig mockd``) is started and spoken
to through the same interface.

The restore procedure (the same for both versions) follows ``shared/peer/README.md``
("Making the real daemon load an image"): the image goes to
``$XENSTORED_RUNDIR/state_dump`` and the child gets a listening socket, an eventfd and one
socket per socket connection at exactly the fd numbers the image names, installed with
``os.dup2`` before ``exec``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import trio
import trio.testing
from ringclient import RingGuests
from wireclient import DEFAULT_TIMEOUT, PeerError, WireClient

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import ConnectionData, GlobalData, Record, SocketSpec

REPO_ROOT = Path(__file__).resolve().parent.parent

_POLL_INTERVAL = 0.02
#: fds the restore child uses while shuffling inherited descriptors to their target numbers.
_STAGING_FD_MIN = 512


def shared_dir() -> Path:
    """``$XSMIG_SHARED`` if set, else ``../shared`` relative to the repository root."""
    override = os.environ.get("XSMIG_SHARED")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def short_tempdir(prefix: str = "xs") -> Path:
    """A fresh directory under /tmp whose name is short enough for unix socket paths."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@dataclass(frozen=True)
class PeerInstall:
    """Where one real C xenstored version's binaries are (see that version's env.sh).

    One instance per referee version. ``loader`` is set when the binaries need their own
    root's dynamic loader (a newer glibc than the host's, as Debian 13's 4.20 on Debian 12):
    then every binary is started as ``loader --library-path LIBS [--preload SHIM] BINARY``
    and nothing goes into LD_LIBRARY_PATH/LD_PRELOAD, so host programs the daemon execs (a
    live-update successor) keep the host's libraries. Otherwise the libraries come from
    LD_LIBRARY_PATH and the shim from LD_PRELOAD (4.17, or a tree built from source).
    """

    version: str
    peer_dir: Path
    cache: Path
    cache_env: str
    xenstored_bin: Path
    control_bin: Path
    tools_dir: Path
    libs: str
    shim: Path
    capture_script: Path
    setup_scripts: tuple[Path, ...]
    loader: Path | None = None

    @classmethod
    def locate(cls, version: str = "4.17") -> PeerInstall:
        """The install of referee ``version`` (a key of ``PEER_VERSIONS``)."""
        try:
            layout = PEER_VERSIONS[version]
        except KeyError:
            known = sorted(PEER_VERSIONS)
            raise PeerError(f"no real xenstored {version!r}; known: {known}") from None
        return layout()

    @property
    def root(self) -> Path:
        return self.cache / "root"

    @property
    def label(self) -> str:
        """``xen-4.17``: the name xsmig's version profiles use for this daemon."""
        return f"xen-{self.version}"

    def ensure(self) -> PeerInstall:
        """Fetch and build what is missing (the scripts are idempotent), then check."""
        if not self.xenstored_bin.is_file() or not self.shim.is_file():
            for script in self.setup_scripts:
                _run_setup(script, self.cache_env, self.cache)
        for needed in (self.xenstored_bin, self.control_bin, self.shim):
            if not needed.is_file():
                raise PeerError(
                    f"peer {self.version} file {needed} missing after "
                    f"{', '.join(s.name for s in self.setup_scripts)}"
                )
        return self

    def tool(self, name: str) -> Path:
        """Path of a client binary: ``xenstore-control`` or a ``xenstore-*`` tool."""
        if name == "xenstore-control":
            return self.control_bin
        return self.tools_dir / name

    def _run_prefix(self, binary: Path, *, preload: bool) -> list[str]:
        if self.loader is None:
            return [str(binary)]
        shim = ["--preload", str(self.shim)] if preload else []
        return [str(self.loader), "--library-path", self.libs, *shim, str(binary)]

    def daemon_argv(self, *args: str) -> list[str]:
        """The command line that runs this version's xenstored with ``args``."""
        return [*self._run_prefix(self.xenstored_bin, preload=True), *args]

    def tool_argv(self, name: str, *args: str) -> list[str]:
        """The command line that runs this version's client tool ``name``."""
        return [*self._run_prefix(self.tool(name), preload=False), *args]

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[self.cache_env] = str(self.cache)
        return env

    def daemon_env(self, rundir: Path, domids: Sequence[int] | None = None) -> dict[str, str]:
        env = self._base_env()
        env.pop("XENSTORED_PATH", None)
        env["XENSTORED_RUNDIR"] = str(rundir)
        if self.loader is None:
            env.update(LD_LIBRARY_PATH=self.libs, LD_PRELOAD=str(self.shim))
        if domids is not None:
            env["XSSHIM_DOMIDS"] = ",".join(str(d) for d in domids)
        return env

    def client_env(self, socket_path: Path) -> dict[str, str]:
        env = self._base_env()
        env["XENSTORED_PATH"] = str(socket_path)
        if self.loader is None:
            env["LD_LIBRARY_PATH"] = self.libs
        return env

    def successor_script(self, rundir: Path, *args: str) -> str:
        """Shell lines that exec this xenstored (``args`` e.g. ``-N -U``) as a live-update
        successor serving ``rundir``: the environment the daemon needs, then ``exec``."""
        env = {"XENSTORED_RUNDIR": str(rundir), self.cache_env: str(self.cache)}
        if self.loader is None:
            env.update(LD_LIBRARY_PATH=self.libs, LD_PRELOAD=str(self.shim))
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        command = " ".join(shlex.quote(part) for part in self.daemon_argv(*args))
        return f"export {exports}\nexec {command}"


def _debian_417() -> PeerInstall:
    """Debian 12's Xen 4.17 (shared/peer): host-compatible libraries via LD_LIBRARY_PATH."""
    peer_dir = shared_dir() / "peer"
    cache = Path(os.environ.get("XEN_PEER_CACHE", "/var/tmp/xen-peer"))
    root = cache / "root"
    return PeerInstall(
        version="4.17",
        peer_dir=peer_dir,
        cache=cache,
        cache_env="XEN_PEER_CACHE",
        xenstored_bin=root / "usr/lib/xen-4.17/bin/xenstored",
        control_bin=root / "usr/lib/xen-4.17/bin/xenstore-control",
        tools_dir=root / "usr/bin",
        libs=str(root / "usr/lib/x86_64-linux-gnu"),
        shim=cache / "xsshim.so",
        capture_script=peer_dir / "capture-image.sh",
        setup_scripts=(peer_dir / "fetch.sh", peer_dir / "build-shim.sh"),
    )


def _debian_420() -> PeerInstall:
    """Debian 13's Xen 4.20 (shared/peer-4.20): needs its own root's glibc and loader."""
    peer_dir = shared_dir() / "peer-4.20"
    cache = Path(os.environ.get("XEN_PEER_NEXT_CACHE", "/var/tmp/xen-peer-next"))
    root = cache / "root"
    libs = root / "usr/lib/x86_64-linux-gnu"
    return PeerInstall(
        version="4.20",
        peer_dir=peer_dir,
        cache=cache,
        cache_env="XEN_PEER_NEXT_CACHE",
        xenstored_bin=root / "usr/lib/xen-4.20/bin/xenstored",
        control_bin=root / "usr/lib/xen-4.20/bin/xenstore-control",
        tools_dir=root / "usr/bin",
        libs=str(libs),
        shim=cache / "xsshim.so",
        capture_script=peer_dir / "capture.sh",
        setup_scripts=(peer_dir / "fetch.sh", peer_dir / "build-shim.sh"),
        loader=libs / "ld-linux-x86-64.so.2",
    )


#: The real daemons tests can start, by version. A release built from source
#: (shared/peer-src) is one more entry: a function returning its PeerInstall, with ``libs``
#: the colon-joined in-tree library dirs and ``setup_scripts`` its build.
PEER_VERSIONS: dict[str, Callable[[], PeerInstall]] = {
    "4.17": _debian_417,
    "4.20": _debian_420,
}
#: The Debian-packaged referees every CI run has (fetch.sh + build-shim.sh in .ci/run).
DEBIAN_VERSIONS = ("4.17", "4.20")


#: Helper processes a test started (``track``); conftest.py stops them after every test.
_TRACKED: list[subprocess.Popen[str]] = []


def track(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """Stop ``process`` (by its pid) when the current test ends, passed or failed."""
    _TRACKED.append(process)
    return process


def stop_tracked() -> None:
    while _TRACKED:
        process = _TRACKED.pop()
        if process.poll() is None:
            process.kill()
        process.wait(5)


def _run_setup(script: Path, cache_env: str, cache: Path) -> None:
    result = subprocess.run(
        [str(script)],
        env={**os.environ, cache_env: str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise PeerError(f"{script} failed ({result.returncode}): {result.stderr.strip()}")


def run_client(
    install: PeerInstall,
    socket_path: Path,
    tool: str,
    *args: str,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a peer client binary against the daemon listening on ``socket_path``."""
    result = subprocess.run(
        install.tool_argv(tool, *args),
        env=install.client_env(socket_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise PeerError(
            f"{tool} {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


# --------------------------------------------------------------------------- daemon


def read_line(stream: IO[str], timeout: float = DEFAULT_TIMEOUT) -> str:
    """One line from a child's pipe, or PeerError after ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise PeerError(f"no output line within {timeout} s")
    return stream.readline()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds.

    The one polling loop of the tests (a condition may also raise, e.g. when the process it
    waits for has died); ``wait_until_async`` is the same for trio code."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise PeerError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(_POLL_INTERVAL)


async def wait_until_async(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """``wait_until`` inside a trio run: other tasks (a daemon in this process) run between
    the polls."""
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(_POLL_INTERVAL)
        return
    raise PeerError(f"timed out after {timeout} s waiting for {what}")


async def settled() -> None:
    """Return once every task of this trio run, an in-process daemon's included, waits for
    something that has not happened (no socket readable, no timer due): whatever the daemon
    would do with what was sent to it so far, it has done. For checking that something did
    *not* happen; unlike a sleep it cannot return too early."""
    await trio.testing.wait_all_tasks_blocked()


@dataclass
class RunningDaemon:
    """A xenstored-like process serving ``rundir/socket``; ``stop()`` ends it and removes an
    owned run directory. Output goes to ``rundir/<log_name>``."""

    install: PeerInstall
    rundir: Path
    process: subprocess.Popen[bytes]
    owns_rundir: bool
    log_name: str = "daemon.log"

    @property
    def socket_path(self) -> Path:
        return self.rundir / "socket"

    @property
    def log_path(self) -> Path:
        return self.rundir / self.log_name

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connect(self, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        return WireClient.connect(self.socket_path, timeout)

    def client(
        self, tool: str, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run this install's ``xenstore-*`` tool or ``xenstore-control`` against the daemon."""
        return run_client(self.install, self.socket_path, tool, *args, check=check, timeout=timeout)

    def guest(self, domid: int, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        """A client speaking as introduced domain ``domid`` (call right after INTRODUCE)."""
        raise NotImplementedError

    def start_client(self, tool: str, *args: str) -> subprocess.Popen[str]:
        """Start a long-running tool (e.g. ``xenstore-watch``); stdout and stderr are pipes.
        The caller must wait for or kill it."""
        return subprocess.Popen(
            self.install.tool_argv(tool, *args),
            env=self.install.client_env(self.socket_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.owns_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
        return self.process.returncode


@dataclass
class RealXenstored(RunningDaemon):
    """A real C xenstored (``xenstored -N`` under the shim); ``install.version`` says which."""

    log_name: str = "xenstored.log"
    guests: RingGuests | None = None

    def guest(self, domid: int, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        """The domain's shared ring page, mapped from the daemon (see ringclient.py)."""
        if self.guests is None:
            raise PeerError("guest rings need a daemon started by start_real_xenstored")
        return self.guests.connect(domid, timeout)

    def start_capture(self, dest: Path, *lu_args: str) -> subprocess.Popen[str]:
        """Begin a live update through the peer's capture script; finish with
        ``finish_capture``."""
        return subprocess.Popen(
            [str(self.install.capture_script), str(self.rundir), str(dest), *lu_args],
            env=self.install.client_env(self.socket_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def _capture_name(self) -> str:
        return f"{self.install.peer_dir.name}/{self.install.capture_script.name}"

    def finish_capture(
        self, capture: subprocess.Popen[str], dest: Path, timeout: float = 60.0
    ) -> bytes:
        try:
            out, err = capture.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            capture.kill()
            capture.communicate()
            raise PeerError(
                f"{self._capture_name} into {dest} did not finish in {timeout} s"
            ) from None
        if capture.returncode != 0:
            raise PeerError(
                f"{self._capture_name} into {dest} exited {capture.returncode}: "
                f"{(out + err).strip()}; daemon log: {self.log().strip()[-500:]}"
            )
        # The re-executed daemon has loaded the dump once it has deleted it again.
        wait_until(
            lambda: not (self.rundir / "state_dump").exists() or not self.alive(),
            DEFAULT_TIMEOUT,
            "the restarted xenstored to load its dump",
        )
        if not self.alive():
            raise PeerError(f"xenstored died restoring its dump: {self.log().strip()[-500:]}")
        return dest.read_bytes()

    def capture_image(self, dest: Path, *lu_args: str, timeout: float = 60.0) -> bytes:
        """A real live update into ``dest`` (lu_args e.g. ``-F -t 2``); the daemon keeps running."""
        return self.finish_capture(self.start_capture(dest, *lu_args), dest, timeout)


def _prepare_rundir(rundir: Path | None) -> tuple[Path, bool]:
    if rundir is None:
        return short_tempdir(), True
    rundir.mkdir(parents=True, exist_ok=True)
    return rundir, False


def start_real_xenstored(
    rundir: Path | None = None,
    *,
    args: Sequence[str] = (),
    domids: Sequence[int] | None = None,
    install: PeerInstall | None = None,
    ready_timeout: float = DEFAULT_TIMEOUT,
) -> RealXenstored:
    """Start ``xenstored -N`` with the shim; returns once its socket accepts connections.

    ``domids`` restricts which domains the shim reports alive (default: all < 0x7ff0).
    """
    install = (install or PeerInstall.locate()).ensure()
    rundir, owned = _prepare_rundir(rundir)
    (rundir / "socket").unlink(missing_ok=True)
    process = spawn(
        install.daemon_argv("-N", *args),
        rundir / RealXenstored.log_name,
        install.daemon_env(rundir, domids),
    )
    daemon = RealXenstored(install, rundir, process, owned)
    wait_serving(daemon, ready_timeout, "xenstored")
    daemon.guests = RingGuests(daemon.pid, daemon.socket_path)
    return daemon


def spawn(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a daemon in a session of its own, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_serving(daemon: RunningDaemon, timeout: float, what: str) -> None:
    """Return once ``daemon``'s socket accepts; else stop it and raise with its log."""
    try:
        wait_until(lambda: _accepts(daemon), timeout, f"{what} socket in {daemon.rundir}")
    except PeerError:
        log = daemon.log().strip()
        daemon.stop()
        raise PeerError(f"{what} in {daemon.rundir} did not start: {log}") from None


def _accepts(daemon: RunningDaemon) -> bool:
    if not daemon.alive():
        raise PeerError(f"xenstored exited {daemon.process.returncode}: {daemon.log().strip()}")
    if not daemon.socket_path.is_socket():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(daemon.socket_path))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- restore mode


@dataclass(frozen=True)
class RestoreFds:
    """The fd numbers a C restore (4.17, 4.20) expects open: GLOBAL_DATA's two and the
    socket CONNs'."""

    rw_socket_fd: int
    evtchn_fd: int
    socket_conn_fds: tuple[int, ...] = ()

    @classmethod
    def from_records(cls, records: Iterable[Record]) -> RestoreFds:
        global_data: GlobalData | None = None
        conn_fds: list[int] = []
        for record in records:
            if isinstance(record, GlobalData):
                global_data = record
            elif isinstance(record, ConnectionData) and isinstance(record.spec, SocketSpec):
                conn_fds.append(record.spec.fd)
        if global_data is None:
            raise PeerError("image has no GLOBAL_DATA record: a C daemon would crash")
        return cls(global_data.rw_socket_fd, global_data.evtchn_fd, tuple(conn_fds))

    @classmethod
    def from_image(cls, image: bytes) -> RestoreFds:
        _header, located = decode_image(image)
        return cls.from_records(item.record for item in located)


@dataclass
class RestoredXenstored(RealXenstored):
    """A real xenstored started on a foreign image; ``conn_peers`` maps each socket
    connection's fd number in the image to our end of that connection, in image order."""

    conn_peers: dict[int, socket.socket] = field(default_factory=dict)

    def peer_client(self, image_fd: int, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        """Act as the client of the restored socket connection that had ``image_fd``."""
        return WireClient.on_socket(
            self.conn_peers[image_fd], f"restored conn fd {image_fd}", timeout
        )

    def stop(self, timeout: float = 5.0) -> int:
        for sock in self.conn_peers.values():
            sock.close()
        return super().stop(timeout)


class RestoreImage(Protocol):
    """What the ``restored_xenstored`` fixture yields."""

    def __call__(self, image: bytes, domids: Sequence[int] | None = None) -> RestoredXenstored: ...


def _install_fds(placement: Mapping[int, int]) -> Callable[[], None]:
    """preexec_fn: put each source fd at its target number (source numbers may collide
    with targets, so everything is first moved out of the way)."""

    def install() -> None:
        staged = {
            target: fcntl.fcntl(source, fcntl.F_DUPFD, _STAGING_FD_MIN)
            for target, source in placement.items()
        }
        for target, high in staged.items():
            os.dup2(high, target, inheritable=True)
        for high in staged.values():
            os.close(high)

    return install


def start_restored_xenstored(
    image: bytes,
    fds: RestoreFds,
    *,
    rundir: Path | None = None,
    args: Sequence[str] = (),
    domids: Sequence[int] | None = None,
    install: PeerInstall | None = None,
    ready_timeout: float = DEFAULT_TIMEOUT,
) -> RestoredXenstored:
    """Start ``xenstored -N -U`` loading ``image``; returns once it has consumed the dump.

    The child's fds ``fds.rw_socket_fd`` (a listening socket at ``rundir/socket``, unless
    -1), ``fds.evtchn_fd`` (an eventfd) and each of ``fds.socket_conn_fds`` (one end of a
    socketpair; the other end is in ``conn_peers``) are installed before exec.
    """
    numbers = [fds.evtchn_fd, *fds.socket_conn_fds]
    if fds.rw_socket_fd >= 0:
        numbers.append(fds.rw_socket_fd)
    if len(set(numbers)) != len(numbers) or min(numbers) < 0:
        raise PeerError(f"image names an fd number twice or a negative one: {fds}")
    install = (install or PeerInstall.locate()).ensure()
    rundir, owned = _prepare_rundir(rundir)
    socket_path = rundir / "socket"
    socket_path.unlink(missing_ok=True)
    dump = rundir / "state_dump"
    dump.write_bytes(image)
    dump.chmod(0o600)

    parent_ends: dict[int, socket.socket] = {}
    child_ends: list[socket.socket] = []
    placement: dict[int, int] = {}
    evtchn = os.eventfd(0)
    try:
        placement[fds.evtchn_fd] = evtchn
        if fds.rw_socket_fd >= 0:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            child_ends.append(listener)
            listener.bind(str(socket_path))
            listener.listen(64)
            placement[fds.rw_socket_fd] = listener.fileno()
        for conn_fd in fds.socket_conn_fds:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            parent_ends[conn_fd] = ours
            child_ends.append(theirs)
            placement[conn_fd] = theirs.fileno()
        with open(rundir / "xenstored.log", "ab") as log:
            process = subprocess.Popen(
                install.daemon_argv("-N", "-U", *args),
                env=install.daemon_env(rundir, domids),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=False,
                # Only fcntl/dup2/close run in the child before exec.
                preexec_fn=_install_fds(placement),  # noqa: PLW1509
            )
    except BaseException:
        for sock in parent_ends.values():
            sock.close()
        raise
    finally:
        os.close(evtchn)
        for sock in child_ends:
            sock.close()
    daemon = RestoredXenstored(install, rundir, process, owned, conn_peers=parent_ends)
    try:
        wait_until(lambda: _restored(daemon, dump), ready_timeout, f"xenstored to load {dump}")
    except PeerError as exc:
        log_text = daemon.log().strip()
        daemon.stop()
        raise PeerError(f"{exc}: {log_text}") from None
    # Every ring page it has now belongs to a restored domain: guest(domid) may claim them
    # while exactly one is unclaimed.
    daemon.guests = RingGuests(daemon.pid, daemon.socket_path, claimed=set())
    return daemon


def _restored(daemon: RestoredXenstored, dump: Path) -> bool:
    if not daemon.alive():
        raise PeerError(f"xenstored exited {daemon.process.returncode} restoring {dump}")
    return not dump.exists()


@contextlib.contextmanager
def running_real_xenstored(
    rundir: Path | None = None,
    *,
    args: Sequence[str] = (),
    domids: Sequence[int] | None = None,
    install: PeerInstall | None = None,
) -> Iterator[RealXenstored]:
    """``with running_real_xenstored() as xs:`` -- started fresh, always stopped."""
    daemon = start_real_xenstored(rundir, args=args, domids=domids, install=install)
    try:
        yield daemon
    finally:
        daemon.stop()


# --------------------------------------------------------------------------- the mock


@dataclass
class MockDaemon(RunningDaemon):
    """``xsmig mockd --socket rundir/socket`` as a subprocess."""

    log_name: str = "mockd.log"

    def guest(self, domid: int, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        """The mock's stand-in ring for ``domid``: a unix socket at rundir/domain/DOMID."""
        return WireClient.connect(self.rundir / "domain" / str(domid), timeout)


#: What the mock prints (stdout or stderr) once its socket is listening.
MOCKD_READY_TEXT = "listening"
#: How the mock is started; ``--socket PATH`` is appended.
MOCKD_COMMAND = (sys.executable, "-m", "xsmig_daemon", "mockd")


#: What the tests' mock answers as unless a test asks for a version (``--compat``): the
#: protocol of the spec, every current feature (GET_QUOTA, watch depth, DOMID_ANY) included.
TEST_MOCK_COMPAT = "spec"


def _with_compat(args: Sequence[str]) -> list[str]:
    if any(arg == "--compat" or arg.startswith("--compat=") for arg in args):
        return list(args)
    return ["--compat", TEST_MOCK_COMPAT, *args]


def start_mockd(
    rundir: Path | None = None,
    *,
    args: Sequence[str] = (),
    install: PeerInstall | None = None,
    ready_timeout: float = DEFAULT_TIMEOUT,
    command: Sequence[str] = MOCKD_COMMAND,
) -> MockDaemon:
    """Start ``python -m xsmig_daemon mockd --socket PATH``; returns after its readiness line.

    ``install`` is only needed for running a real version's tools against it (``client``).
    """
    install = install or PeerInstall.locate()
    rundir, owned = _prepare_rundir(rundir)
    socket_path = rundir / "socket"
    socket_path.unlink(missing_ok=True)
    # The log is appended to (a recovery reuses the run directory): only what this process
    # writes after ``offset`` can say that it is ready.
    log_path = rundir / MockDaemon.log_name
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [*command, "--socket", str(socket_path), *_with_compat(args)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = MockDaemon(install, rundir, process, owned)
    try:
        wait_until(
            lambda: _mock_ready(daemon, offset),
            ready_timeout,
            f"mockd to print '{MOCKD_READY_TEXT}'",
        )
    except PeerError as exc:
        log_text = daemon.log().strip()
        daemon.stop()
        raise PeerError(f"{exc}; mockd output: {log_text[-1000:]}") from None
    return daemon


def _mock_ready(daemon: MockDaemon, offset: int = 0) -> bool:
    if not daemon.alive():
        raise PeerError(f"mockd exited {daemon.process.returncode}")
    written = daemon.log_path.read_bytes()[offset:] if daemon.log_path.exists() else b""
    return MOCKD_READY_TEXT.encode() in written and _accepts(daemon)


@contextlib.contextmanager
def running_mockd(
    rundir: Path | None = None,
    *,
    args: Sequence[str] = (),
    command: Sequence[str] = MOCKD_COMMAND,
) -> Iterator[MockDaemon]:
    """``with running_mockd() as mock:`` -- started fresh, always stopped."""
    daemon = start_mockd(rundir, args=args, command=command)
    try:
        yield daemon
    finally:
        daemon.stop()
