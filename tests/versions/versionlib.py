"""Helpers of the version-matrix tests: run xsmig commands, list a daemon's tree with the
Debian ``xenstore-ls``, and find a restored client by the watch it had in the image."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from peerlib import REPO_ROOT, RestoredXenstored, RunningDaemon
from wireclient import ok, payload, write

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import ConnectionData, SocketSpec, WatchData
from xsmig_daemon.wire.ops import Op

#: Debian 12's xenstore-utils (libxenstore 4.17): they talk to 4.17, 4.20 and the mock.
XENSTORE_LS = "/usr/bin/xenstore-ls"


def xsmig(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m xsmig_daemon ARGS`` from the repository; never raises on failure."""
    return subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def xsmig_ok(*args: str) -> subprocess.CompletedProcess[str]:
    result = xsmig(*args)
    assert result.returncode == 0, f"xsmig {' '.join(args)}: {result.stderr}"
    return result


def listing(socket_path: Path) -> list[str]:
    """``xenstore-ls -f -p /``: every node with its value and permissions, one a line."""
    result = subprocess.run(
        [XENSTORE_LS, "-f", "-p", "/"],
        env={**os.environ, "XENSTORED_PATH": str(socket_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def populate(daemon: RunningDaemon, *, introduce: bool = True) -> None:
    """A small tree with values, an empty node, a binary value and domain 5's home. With
    ``introduce``, guest 5 is introduced and owns its home (a real loader dies on a node
    whose owner it has not re-introduced); without (a daemon that cannot introduce under the
    shim, oxenstored), dom0 owns it and 5 may read it."""
    with daemon.connect() as dom0:
        write(dom0, "/vm/1/name", b"guest-one")
        write(dom0, "/vm/1/empty", b"")
        write(dom0, "/data/bin", bytes(range(1, 32)))
        write(dom0, "/local/domain/5/name", b"five")
        home_perms = ("n5", "r0") if introduce else ("n0", "r5")
        ok(dom0, Op.SET_PERMS, "/local/domain/5", *home_perms)
        ok(dom0, Op.SET_PERMS, "/vm/1/name", "b0", "r1", "w2")
        if introduce:
            ok(dom0, Op.INTRODUCE, "5", str(0x1005), "15")


def watcher_fd(image: bytes, token: str) -> int:
    """The socket fd, in the image, of the connection that holds a watch with ``token``."""
    _header, located = decode_image(image)
    records = [item.record for item in located]
    sockets = {
        r.conn_id: r.spec.fd
        for r in records
        if isinstance(r, ConnectionData) and isinstance(r.spec, SocketSpec)
    }
    owners = [r.conn_id for r in records if isinstance(r, WatchData) and r.token == token]
    assert len(owners) == 1 and owners[0] in sockets, (token, owners, sockets)
    return sockets[owners[0]]


def assert_event_reaches(
    restored: RestoredXenstored, image: bytes, token: str, path: str, *, skip_pending: int = 0
) -> None:
    """A dom0 write of ``path`` is delivered to the restored client watching with ``token``
    (after ``skip_pending`` messages it had pending in the image)."""
    with restored.peer_client(watcher_fd(image, token)) as client:
        for _ in range(skip_pending):
            client.receive()
        with restored.connect() as dom0:
            write(dom0, path, b"changed")
        assert client.event().payload == payload(path, token)
