"""Shared fixtures: the real C xenstored (Xen 4.17, Xen 4.20) and the mock as subprocesses.

Every daemon fixture starts a fresh daemon in a short run directory under /tmp and stops it
(SIGTERM, then SIGKILL) and removes the directory when the test ends, whatever happened.

``mock_daemon`` is the mock inside the test's own trio run (no process): a test can see its
engine, and ``peerlib.settled`` knows when it has done all it can.

Per version: ``peer_install`` / ``real_xenstored`` / ``restored_xenstored`` are Xen 4.17;
the ``*_420`` fixtures are Xen 4.20; ``referee`` (with ``referee_xenstored`` and
``referee_restore``) runs a test once per real version in ``DEBIAN_VERSIONS``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
import trio
from peerlib import (
    DEBIAN_VERSIONS,
    MockDaemon,
    PeerInstall,
    RealXenstored,
    RestoredXenstored,
    RestoreFds,
    RestoreImage,
    shared_dir,
    start_mockd,
    start_real_xenstored,
    start_restored_xenstored,
    stop_tracked,
)

from xsmig_daemon.mockd import MockDaemon as InProcessMock

DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _stop_tracked_helpers() -> Iterator[None]:
    """Helper processes a test tracked (peerlib.track) end with it, whatever happened."""
    yield
    stop_tracked()


@pytest.fixture
async def mock_daemon() -> AsyncIterator[InProcessMock]:
    """The mock xenstored serving a short temporary socket path inside this trio run."""
    rundir = tempfile.mkdtemp(prefix="xs", dir="/tmp")
    try:
        async with trio.open_nursery() as nursery:
            daemon = InProcessMock(str(Path(rundir) / "socket"))
            with trio.fail_after(5):
                await nursery.start(daemon.run)
            yield daemon
            nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


@pytest.fixture(scope="session")
def peer_install() -> PeerInstall:
    """The fetched Debian 4.17 binaries (fetched/built on first use)."""
    return PeerInstall.locate("4.17").ensure()


@pytest.fixture(scope="session")
def peer_install_420() -> PeerInstall:
    """The fetched Debian 13 Xen 4.20 binaries (fetched/built on first use)."""
    return PeerInstall.locate("4.20").ensure()


@pytest.fixture(scope="session", params=DEBIAN_VERSIONS, ids=lambda v: f"xen-{v}")
def referee(request: pytest.FixtureRequest) -> PeerInstall:
    """Each real version in turn: tests using it run once per referee."""
    version: str = request.param
    return PeerInstall.locate(version).ensure()


@pytest.fixture(scope="session")
def shared_path() -> Path:
    """``../shared`` (or ``$XSMIG_SHARED``): specs, reference texts and the peer scripts."""
    return shared_dir()


def _running(install: PeerInstall) -> Iterator[RealXenstored]:
    daemon = start_real_xenstored(install=install)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def real_xenstored(peer_install: PeerInstall) -> Iterator[RealXenstored]:
    """A fresh real 4.17 xenstored: ``.rundir``, ``.socket_path``, ``.pid``, ``.connect()``,
    ``.client(tool, *args)``, ``.capture_image(dest, *lu_args)``, ``.log()``."""
    yield from _running(peer_install)


@pytest.fixture
def real_xenstored_420(peer_install_420: PeerInstall) -> Iterator[RealXenstored]:
    """A fresh real 4.20 xenstored (same interface as ``real_xenstored``)."""
    yield from _running(peer_install_420)


@pytest.fixture
def referee_xenstored(referee: PeerInstall) -> Iterator[RealXenstored]:
    """A fresh real xenstored of the ``referee`` version."""
    yield from _running(referee)


@pytest.fixture
def mockd(peer_install: PeerInstall) -> Iterator[MockDaemon]:
    """A fresh ``xsmig mockd --socket PATH`` started after it printed its readiness line:
    ``.rundir``, ``.socket_path``, ``.pid``, ``.connect()``, ``.client(tool, *args)``."""
    daemon = start_mockd(install=peer_install)
    try:
        yield daemon
    finally:
        daemon.stop()


def _restorer(install: PeerInstall) -> Iterator[RestoreImage]:
    started: list[RestoredXenstored] = []

    def start(image: bytes, domids: Sequence[int] | None = None) -> RestoredXenstored:
        daemon = start_restored_xenstored(
            image, RestoreFds.from_image(image), domids=domids, install=install
        )
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()


@pytest.fixture
def restored_xenstored(peer_install: PeerInstall) -> Iterator[RestoreImage]:
    """A factory: ``restored_xenstored(image_bytes, domids=None)`` starts the real 4.17
    xenstored in restore mode on an image (fds taken from its GLOBAL_DATA and socket
    CONNECTION_DATA records) and returns once it loaded it; raises PeerError with the
    daemon's own message if it refuses the image. Every daemon started is stopped."""
    yield from _restorer(peer_install)


@pytest.fixture
def restored_xenstored_420(peer_install_420: PeerInstall) -> Iterator[RestoreImage]:
    """``restored_xenstored`` for the real 4.20 xenstored."""
    yield from _restorer(peer_install_420)


@pytest.fixture
def referee_restore(referee: PeerInstall) -> Iterator[RestoreImage]:
    """``restored_xenstored`` for the ``referee`` version."""
    yield from _restorer(referee)


@pytest.fixture
def two_mocks() -> Iterator[tuple[MockDaemon, MockDaemon]]:
    """Two mocks (a migration's source and destination), both stopped after the test."""
    a = start_mockd()
    try:
        b = start_mockd()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()
