"""Fixtures: an engine, a dom0 socket client and introduced guests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xsmig_daemon.image.records import ConnType
from xsmig_daemon.store import Engine
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def dom0(engine: Engine) -> EngineClient:
    return EngineClient(engine, engine.connect_socket(fd=5))


@pytest.fixture
def guest(engine: Engine, dom0: EngineClient) -> Callable[[int], EngineClient]:
    """Introduce a domain (via dom0) and return a client acting as it."""

    def make(domid: int) -> EngineClient:
        dom0.ok(Op.INTRODUCE, str(domid), "1", str(10 + domid))
        conn = engine.domain_connection(domid)
        assert conn is not None and conn.kind is ConnType.RING
        return EngineClient(engine, conn)

    return make
