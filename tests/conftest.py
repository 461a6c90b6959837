"""Shared fixtures: the real Xen 4.17 xenstored and the mock daemon as subprocesses.

Both fixtures start a fresh daemon in a short run directory under /tmp and stop it (SIGTERM,
then SIGKILL) and remove the directory when the test ends, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peerlib import (
    MockDaemon,
    PeerInstall,
    RealXenstored,
    shared_dir,
    start_mockd,
    start_real_xenstored,
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
