"""Remake the real Xen images in tests/data by driving the real daemon (shared/peer*).

    .venv/bin/python tests/data/make_images.py [--out DIR] [NAME ...]                # 4.17
    .venv/bin/python tests/data/make_images.py --version 4.20 [NAME ...]  # -> xen-4.20/

Each image comes from a fresh ``xenstored -N`` (under the shim) brought into a state with raw
socket clients, then dumped by a real live update through ``capture-image.sh``. README.md in
this directory says what each one holds. Contents are deterministic (fixed seeds); fd numbers
and the order of racing clients are the daemon's.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peerlib import (
    PeerInstall,
    RealXenstored,
    running_real_xenstored,
)
from ringclient import RING_SIZE, RingStream
from wireclient import PeerError, WireClient, payload

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

DATA_DIR = Path(__file__).resolve().parent
OK = b"OK\0"


def expect_ok(client: WireClient, op: Op, *args: str | bytes, tx_id: int = 0) -> None:
    reply = client.call(op, *args, tx_id=tx_id)
    if reply.payload != OK:
        raise PeerError(f"{op.name} {args!r} answered {reply.payload!r}")


def write(client: WireClient, path: str, value: bytes, tx_id: int = 0) -> None:
    reply = client.request(Op.WRITE, payload(path, value=value), tx_id=tx_id)
    if reply.payload != OK:
        raise PeerError(f"WRITE {path} answered {reply.payload!r}")


def base_tree(client: WireClient) -> None:
    write(client, "/local/domain/0/name", b"Domain-0")
    write(client, "/local/domain/0/domid", b"0")


def make_pending_input(xs: RealXenstored, out: Path) -> bytes:
    """A forced live update while a transaction is open; meanwhile one client's
    TRANSACTION_START is parked (live-update.md 1.2) and followed by half a WRITE, and
    another client has sent 7 bytes of a header."""
    with xs.connect() as setup:
        base_tree(setup)
    holder = xs.connect()
    tx = holder.call(Op.TRANSACTION_START, "")
    write(holder, "/held/by-tx", b"lost", tx_id=int(tx.payload.rstrip(b"\0")))
    capture = xs.start_capture(out, "-F", "-t", "2")
    parked = xs.connect()
    # Until the LU request is pending, TRANSACTION_START is answered at once: undo and retry.
    deadline = time.monotonic() + 5
    while True:
        req = parked.send(Op.TRANSACTION_START, b"\0", req_id=42)
        if parked.is_silent(0.2):
            break
        reply = parked.reply()
        if reply.req_id != req or time.monotonic() > deadline:
            raise PeerError(f"TRANSACTION_START was never parked: {reply.describe()}")
        expect_ok(parked, Op.TRANSACTION_END, "F", tx_id=int(reply.payload.rstrip(b"\0")))
    half_write = encode_message(Op.WRITE, 77, 0, payload("/half", value=b"0123456789"))
    parked.send_raw(half_write[:21])
    partial_header = xs.connect()
    partial_header.send_raw(encode_message(Op.READ, 5, 0, payload("/local"))[:7])
    time.sleep(0.3)  # let the daemon read the partial bytes before it dumps
    image = xs.finish_capture(capture, out)
    for client in (holder, parked, partial_header):
        client.close()
    return image


def make_pending_output(xs: RealXenstored, out: Path) -> bytes:
    """A client that never reads: a watch on /out (OK + initial event unread), 40 pipelined
    READs of a 4000-byte value (the socket buffer takes about 10), then 20 watch events
    from another client's writes; about 30 replies and the 20 events stay queued."""
    big = bytes(random.Random(2).randrange(256) for _ in range(4000))
    with xs.connect() as setup:
        base_tree(setup)
        write(setup, "/big", big)
    stalled = xs.connect()
    stalled.send(Op.WATCH, payload("/out", "out-token"))
    for _ in range(40):
        stalled.send(Op.READ, payload("/big"))
    with xs.connect() as writer:
        for i in range(20):
            write(writer, f"/out/n{i}", f"event {i}".encode())
        # A round trip after the writes: the daemon has processed everything before it.
        writer.call(Op.READ, "/out/n19")
    image = xs.capture_image(out)
    stalled.close()
    return image


def make_many_watches(xs: RealXenstored, out: Path) -> bytes:
    """59 watches on one client (absolute, relative, special, same path with two tokens,
    a path that does not exist) and 3 on a second; all replies and initial events read."""
    with xs.connect() as setup:
        base_tree(setup)
        for i in range(10):
            write(setup, f"/w/n{i}", f"{i}".encode())
    first = xs.connect()
    watches: list[tuple[str, str]] = []
    watches += [(f"/w/n{i}", f"abs-{i}") for i in range(20)]
    watches += [(f"data/item{i}", f"rel-{i}") for i in range(20)]
    watches += [("@introduceDomain", f"intro-{i}") for i in range(5)]
    watches += [("@releaseDomain", f"release-{i}") for i in range(5)]
    watches += [("/local/domain/0/name", "t1"), ("/local/domain/0/name", "t2")]
    watches += [("/", "root"), ("name", "rel-name"), ("/does/not/exist", "missing")]
    watches += [("/w", "tok with spaces"), ("/w", ""), ("domid", "rel-domid")]
    watches += [("/local/domain", "x" * 200)]
    for path, token in watches:
        expect_ok(first, Op.WATCH, path, token)
    for _ in watches:
        first.event()
    second = xs.connect()
    for path, token in [("/w", "second"), ("@releaseDomain", "second-rel"), ("name", "n")]:
        expect_ok(second, Op.WATCH, path, token)
        second.event()
    image = xs.capture_image(out)
    first.close()
    second.close()
    return image


def make_domains(xs: RealXenstored, out: Path) -> bytes:
    """INTRODUCE domains 1..5 (gfn 0x1000+N, port 10+N), SET_TARGET 2->1 and 4->3, each
    domain's home owned by it, /shared with a mixed permission list, and @introduceDomain
    readable by dom1. A watcher on @introduceDomain/@releaseDomain has read its events."""
    with xs.connect() as dom0:
        base_tree(dom0)
        expect_ok(dom0, Op.WATCH, "@introduceDomain", "intro")
        dom0.event()
        for domid in range(1, 6):
            home = f"/local/domain/{domid}"
            write(dom0, f"{home}/name", f"guest{domid}".encode())
            write(dom0, f"{home}/domid", str(domid).encode())
            write(dom0, f"{home}/data/blob", bytes(range(domid * 10)))
            expect_ok(dom0, Op.SET_PERMS, home, f"n{domid}", "r0")
            expect_ok(dom0, Op.SET_PERMS, f"{home}/name", f"r{domid}")
            expect_ok(dom0, Op.INTRODUCE, str(domid), str(0x1000 + domid), str(10 + domid))
            dom0.event()
        expect_ok(dom0, Op.SET_TARGET, "2", "1")
        expect_ok(dom0, Op.SET_TARGET, "4", "3")
        write(dom0, "/shared/config", b"shared")
        expect_ok(dom0, Op.SET_PERMS, "/shared", "r0", "b1", "r2", "w3", "n4")
        expect_ok(dom0, Op.SET_PERMS, "/shared/config", "w5", "r1")
        expect_ok(dom0, Op.SET_PERMS, "@introduceDomain", "n0", "r1")
        expect_ok(dom0, Op.SET_PERMS, "@releaseDomain", "n0", "r2", "r3")
        image = xs.capture_image(out)
    return image


def make_big_tree(xs: RealXenstored, out: Path) -> bytes:
    """About 2000 nodes: /big/d<i>/n<j> for 40 x 49, values of 0-300 random bytes (NULs and
    high bytes included, seed 5), written pipelined; plus 3 nested levels under /deep."""
    rng = random.Random(5)
    with xs.connect() as client:
        base_tree(client)
        sent = 0
        for i in range(40):
            for j in range(49):
                value = bytes(rng.randrange(256) for _ in range(rng.randrange(301)))
                client.send(Op.WRITE, payload(f"/big/d{i}/n{j}", value=value))
                sent += 1
        for _ in range(sent):
            if client.reply().payload != OK:
                raise PeerError("a pipelined WRITE failed")
        write(client, "/deep/a/b/c", b"\0" * 64)
        image = xs.capture_image(out)
    return image


def _settle(stream: RingStream, done: Callable[[tuple[int, int, int, int]], bool]) -> None:
    """Poke the daemon until the ring indexes satisfy ``done`` (5 s at most)."""
    deadline = time.monotonic() + 5
    while not done(stream.indexes()):
        if time.monotonic() > deadline:
            raise PeerError(f"ring {stream.page} never reached the expected state")
        stream.poke()


def make_ring_pending(xs: RealXenstored, out: Path) -> bytes:
    """Domain 1 (introduced; home owned by dom1) speaks over its ring (tests/ringclient.py)
    and stops reading: it reads its 3000-byte /local/domain/1/big, so the daemon fills the
    1024-byte response ring and keeps the rest of that reply (a partly sent message); dom0
    then writes under a node dom1 watches (an event queued behind it); dom1 writes the first
    10 bytes of a READ header (pending input on a ring)."""
    big = bytes(random.Random(7).randrange(256) for _ in range(3000))
    with xs.connect() as dom0:
        base_tree(dom0)
        write(dom0, "/local/domain/1/big", big)
        expect_ok(dom0, Op.SET_PERMS, "/local/domain/1", "n1")
        expect_ok(dom0, Op.SET_PERMS, "/local/domain/1/big", "n1")
        expect_ok(dom0, Op.INTRODUCE, "1", "4097", "11")
        guest = xs.guest(1)
        ring = guest.stream
        assert isinstance(ring, RingStream)
        expect_ok(guest, Op.WATCH, "w", "guest-watch")
        guest.event()
        guest.send(Op.READ, payload("big"), req_id=9)
        _settle(ring, lambda idx: idx[3] - idx[2] == RING_SIZE)
        write(dom0, "/local/domain/1/w/x", b"event for dom1")
        guest.send_raw(encode_message(Op.READ, 10, 0, payload("w/x"))[:10])
        _settle(ring, lambda idx: idx[0] == idx[1])
        image = xs.capture_image(out)
        guest.close()
    return image


MAKERS: dict[str, Callable[[RealXenstored, Path], bytes]] = {
    "pending_input.img": make_pending_input,
    "pending_output.img": make_pending_output,
    "many_watches.img": make_many_watches,
    "domains5.img": make_domains,
    "big_tree.img": make_big_tree,
    "ring_pending.img": make_ring_pending,
}

#: Copied unchanged from shared/peer*/images (described in its DESCRIPTION.txt).
SHARED_IMAGES = ("basic.img", "watches.img", "domains.img")
#: Where each version's images go: 4.17 at the top (the first referee), others below.
OUT_DIRS = {"4.17": DATA_DIR, "4.20": DATA_DIR / "xen-4.20"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", choices=tuple(OUT_DIRS), default="4.17")
    parser.add_argument("--out", type=Path, help="default: the version's directory")
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(MAKERS)}")
    args = parser.parse_args()
    install = PeerInstall.locate(args.version).ensure()
    out: Path = args.out or OUT_DIRS[args.version]
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or MAKERS:
        if name not in MAKERS:
            parser.error(f"unknown image {name}")
        with running_real_xenstored(install=install) as xs:
            image = MAKERS[name](xs, out / name)
        (out / name).chmod(0o644)
        print(f"{name}: {len(image)} bytes")
    if not args.names:
        for name in SHARED_IMAGES:
            shutil.copyfile(install.peer_dir / "images" / name, out / name)
        print(f"copied {', '.join(SHARED_IMAGES)} from {install.peer_dir.name}/images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
