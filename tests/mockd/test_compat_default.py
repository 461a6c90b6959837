"""``xsmig mockd`` without ``--compat`` answers as Xen 4.20 (the default), and the option's
choices are the compat table's names."""

from __future__ import annotations

import subprocess
import sys

from peerlib import MOCKD_COMMAND, REPO_ROOT, MockDaemon, PeerInstall, _mock_ready, wait_until
from peerlib import short_tempdir as tempdir

from xsmig_daemon.store.compat import COMPATS, DEFAULT_COMPAT
from xsmig_daemon.wire.ops import Op


def test_the_default_is_xen_420() -> None:
    assert DEFAULT_COMPAT == "xen-4.20"
    rundir = tempdir()
    with open(rundir / MockDaemon.log_name, "ab") as log:
        process = subprocess.Popen(
            [*MOCKD_COMMAND, "--socket", str(rundir / "socket")],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = MockDaemon(PeerInstall.locate(), rundir, process, True)
    try:
        wait_until(lambda: _mock_ready(daemon), 20, "mockd to listen")
        with daemon.connect() as client:
            assert client.call(Op.GET_FEATURE).payload == b"ENOSYS\0"
            assert client.call(Op.GET_PERMS, "@releaseDomain").payload == b"n0\0"
            assert client.call(Op.WATCH, "/a", "t", "1").payload == b"EINVAL\0"
    finally:
        daemon.stop()


def test_help_lists_every_compat() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "mockd", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(result.stdout.split())
    assert all(name in text for name in COMPATS)
    assert "Xen 4.20 (default)" in text
