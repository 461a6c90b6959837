"""Shared fixtures: the real Xen 4.17 xenstored and the mock daemon as subprocesses.

Both fixtures start a fresh daemon in a short run directory under /tmp and stop it (SIGTERM,
then SIGKILL) and remove the directory when the test ends, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from peerlib import (
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
)

DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def peer_install() -> PeerInstall:
    """The fetched Debian 4.17 binaries (fetched/built on first use)."""
    return PeerInstall.locate().ensure()


@pytest.fixture(scope="session")
def shared_path() -> Path:
    """``../shared`` (or ``$XSMIG_SHARED``): specs, reference texts and the peer scripts."""
    return shared_dir()


@pytest.fixture
def real_xenstored(peer_install: PeerInstall) -> Iterator[RealXenstored]:
    """A fresh real 4.17 xenstored: ``.rundir``, ``.socket_path``, ``.pid``, ``.connect()``,
    ``.client(tool, *args)``, ``.capture_image(dest, *lu_args)``, ``.log()``."""
    daemon = start_real_xenstored(install=peer_install)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def mockd(peer_install: PeerInstall) -> Iterator[MockDaemon]:
    """A fresh ``xsmig mockd --socket PATH`` started after it printed its readiness line:
    ``.rundir``, ``.socket_path``, ``.pid``, ``.connect()``, ``.client(tool, *args)``."""
    daemon = start_mockd(install=peer_install)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def restored_xenstored(peer_install: PeerInstall) -> Iterator[RestoreImage]:
    """A factory: ``restored_xenstored(image_bytes, domids=None)`` starts the real 4.17
    xenstored in restore mode on an image (fds taken from its GLOBAL_DATA and socket
    CONNECTION_DATA records) and returns once it loaded it; raises PeerError with the
    daemon's own message if it refuses the image. Every daemon started is stopped."""
    started: list[RestoredXenstored] = []

    def start(image: bytes, domids: Sequence[int] | None = None) -> RestoredXenstored:
        daemon = start_restored_xenstored(
            image, RestoreFds.from_image(image), domids=domids, install=peer_install
        )
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()
