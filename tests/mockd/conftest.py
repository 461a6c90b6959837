"""An in-process mock daemon on a short temporary socket path, stopped after the test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from xsmig_daemon.mockd import MockDaemon


@pytest.fixture
async def mock_daemon() -> AsyncIterator[MockDaemon]:
    rundir = tempfile.mkdtemp(prefix="xs", dir="/tmp")
    try:
        async with trio.open_nursery() as nursery:
            daemon = MockDaemon(str(Path(rundir) / "socket"))
            with trio.fail_after(5):
                await nursery.start(daemon.run)
            yield daemon
            nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
