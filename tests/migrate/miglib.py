"""Helpers of the migration tests: a source with guest 7 in every interesting state, listings
with /usr/bin/xenstore-ls, the remapping done by hand (never by the code under test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from peerlib import REPO_ROOT, RunningDaemon
from wireclient import PeerError, WireClient, ok, write

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

XSMIG = (sys.executable, "-m", "xsmig_daemon")
BIG = b"v" * 2000
#: Replies the guest asks for and does not read: more than the socket buffers and the
#: outstanding quota (20) hold, so the daemon has queued replies and unprocessed requests.
UNREAD_READS = 200
#: req ids of the unread READs, above those the guest allocates itself
UNREAD_FIRST_ID = 5000


def xsmig(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XSMIG, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def ls(daemon: RunningDaemon, path: str) -> list[str]:
    """``xenstore-ls -f -p PATH`` with Debian's client (lines, sorted as printed)."""
    env = dict(os.environ, XENSTORED_PATH=str(daemon.socket_path))
    result = subprocess.run(
        ["/usr/bin/xenstore-ls", "-f", "-p", path],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [" ".join(line.split()) for line in result.stdout.splitlines()]


def remapped(lines: list[str], old: int, new: int) -> list[str]:
    """What a listing of domain ``old`` looks like for ``new``: home and perms entries."""
    home = re.compile(rf"^/local/domain/{old}(?=[/ ])")
    perm = re.compile(rf"(?<=[(,])([nrwb]){old}(?=[,)])")
    return [perm.sub(rf"\g<1>{new}", home.sub(f"/local/domain/{new}", line)) for line in lines]


def introduce(admin: WireClient, domid: int) -> None:
    ok(admin, Op.INTRODUCE, str(domid), "1", str(20 + domid))


def build_domain(admin: WireClient, domid: int = 7) -> None:
    """Domain ``domid`` as a toolstack leaves it: home, data, /vm entry, a backend dir."""
    home = f"/local/domain/{domid}"
    write(admin, home, b"")
    ok(admin, Op.SET_PERMS, home, "n0", f"r{domid}")
    write(admin, f"{home}/name", b"web")
    ok(admin, Op.SET_PERMS, f"{home}/name", "n0", f"r{domid}")
    write(admin, f"{home}/big", BIG)
    ok(admin, Op.SET_PERMS, f"{home}/big", "n0", f"r{domid}")
    for path in ("data", "data/key", "data/sub", "data/sub/leaf"):
        write(admin, f"{home}/{path}", b"v1")
        ok(admin, Op.SET_PERMS, f"{home}/{path}", f"b{domid}")
    write(admin, f"/vm/{domid}", b"uuid")
    ok(admin, Op.SET_PERMS, f"/vm/{domid}", f"b{domid}")
    backend = f"/local/domain/0/backend/vif/{domid}/0"
    write(admin, f"{backend}/mac", b"00:16:3e")
    ok(admin, Op.SET_PERMS, f"/local/domain/0/backend/vif/{domid}", "n0", f"r{domid}")
    introduce(admin, domid)


@dataclass
class GuestState:
    """What the guest left open at the source."""

    clean_tx: int
    stale_tx: int
    half: bytes
    unread: list[int]


def busy_guest(admin: WireClient, guest: WireClient) -> GuestState:
    """Watches (one with depth), two transactions (one that will conflict), replies it does not
    read, requests the daemon has not processed, and half a request."""
    ok(guest, Op.WATCH, "data", "rel")
    ok(guest, Op.WATCH, "/local/domain/7/data", "deep", "1")
    assert {guest.event().payload, guest.event().payload} == {
        b"data\0rel\0",
        b"/local/domain/7/data\0deep\0",
    }
    clean = int(ok(guest, Op.TRANSACTION_START, "").rstrip(b"\0"))
    ok(guest, Op.READ, "data/key", tx_id=clean)
    write(guest, "data/txw", b"t", tx_id=clean)
    stale = int(ok(guest, Op.TRANSACTION_START, "").rstrip(b"\0"))
    ok(guest, Op.READ, "name", tx_id=stale)
    write(guest, "data/tx2", b"t", tx_id=stale)
    write(admin, "/local/domain/7/name", b"web2")  # the stale one now conflicts
    # One write: once `outstanding` replies wait, the daemon stops reading the guest, and
    # 200 separate small sends would fill the socket's send budget (each costs a whole
    # buffer) before the daemon has read them all.
    unread = list(range(UNREAD_FIRST_ID, UNREAD_FIRST_ID + UNREAD_READS))
    guest.send_raw(b"".join(encode_message(Op.READ, rid, 0, b"big\0") for rid in unread))
    half = encode_message(Op.READ, 9999, 0, b"data/key\0")
    guest.send_raw(half[:9])
    return GuestState(clean, stale, half, unread)


def read_big_replies(guest: WireClient, count: int, got: list[int]) -> None:
    """Collect READ big replies (req ids) until ``count`` are in ``got`` or the peer closes."""
    while len(got) < count:
        try:
            message = guest.receive()
        except PeerError as exc:  # the source closed the endpoint: the rest is elsewhere
            assert "closed" in str(exc), exc
            return
        assert message.op == Op.READ and message.payload == BIG, message.describe()
        got.append(message.req_id)


def guest_socket(rundir: Path, domid: int) -> Path:
    return rundir / "domain" / str(domid)
