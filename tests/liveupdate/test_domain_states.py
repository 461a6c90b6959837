"""Live updates of the mock while domains are in the states a dom0 has all the time: a
domain whose home the toolstack has created and chowned but not yet introduced, an
introduced guest, and a released one, on the default (Xen 4.20) and the spec protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lusupport import live_update
from peerlib import MockDaemon, running_mockd
from wireclient import ok, write

from xsmig_daemon.wire.ops import Op

XSMIG = Path(sys.executable).parent / "xsmig"


def listing(mockd: MockDaemon) -> str:
    return mockd.client("xenstore-ls", "-f", "-p", "/").stdout


@pytest.mark.parametrize("compat", ["xen-4.20", "xen-4.17", "spec"])
def test_a_home_owned_by_a_domain_not_yet_introduced_survives(compat: str) -> None:
    with running_mockd(args=["--compat", compat]) as mockd, mockd.connect() as dom0:
        write(dom0, "/local/domain/1/name", b"booting")
        ok(dom0, Op.SET_PERMS, "/local/domain/1", "n1", "r0")
        ok(dom0, Op.SET_PERMS, "/local/domain/1/name", "n1", "r0")
        write(dom0, "/local/domain/2/name", b"running")
        ok(dom0, Op.SET_PERMS, "/local/domain/2", "n2")
        ok(dom0, Op.INTRODUCE, "2", str(0x1002), "12")
        before = listing(mockd)
        result = live_update(mockd, XSMIG)
        assert result.returncode == 0, result.stdout + result.stderr
        assert listing(mockd) == before
        # The daemon serves on; the old connection too.
        write(dom0, "/local/domain/1/state", b"up")
        assert "Traceback" not in mockd.log()
