"""The real 4.17 images of tests/data loaded by the real 4.17 xenstored (restore mode) and by
``xsmig mockd --restore IMAGE`` look the same to clients: the whole tree with permissions as
``xenstore-ls -f -p`` prints it, which domains are introduced, and for the guest of
ring_pending.img the rest of its partly sent reply, its queued event and its watch."""

from __future__ import annotations

from pathlib import Path

import pytest
from peerlib import RestoreImage, RunningDaemon, running_mockd

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

DATA = Path(__file__).resolve().parent.parent / "data"
IMAGES = sorted(path.name for path in DATA.glob("*.img"))


def _view(daemon: RunningDaemon) -> tuple[object, ...]:
    listing = daemon.client("xenstore-ls", "-f", "-p", "/", check=False)
    with daemon.connect() as dom0:
        introduced = [dom0.call(Op.IS_DOMAIN_INTRODUCED, str(d)).payload for d in range(8)]
    return listing.returncode, listing.stdout, listing.stderr, introduced


@pytest.mark.parametrize("name", IMAGES)
def test_a_restored_image_looks_the_same(name: str, restored_xenstored: RestoreImage) -> None:
    assert len(IMAGES) >= 9
    real = restored_xenstored((DATA / name).read_bytes())
    with running_mockd(args=("--restore", str(DATA / name))) as mock:
        assert _view(mock) == _view(real)


def _guest_after_restore(daemon: RunningDaemon) -> list[bytes]:
    """What dom1 of ring_pending.img receives: pending output, then a fresh event."""
    with daemon.guest(1) as guest:
        pending = b""
        while len(pending) < 1992 + 32:
            chunk = guest.stream.recv_within(5)
            assert chunk, f"{daemon.log_name}: no pending output for dom1"
            pending += chunk
        with daemon.connect() as dom0:
            dom0.call(Op.WRITE, "/local/domain/1/w/y")
        return [pending, guest.receive().encode()]


def test_a_restored_guest_gets_the_same_bytes(restored_xenstored: RestoreImage) -> None:
    image = DATA / "ring_pending.img"
    real = _guest_after_restore(restored_xenstored(image.read_bytes()))
    assert real[1] == encode_message(Op.WATCH_EVENT, 0, 0, b"w/y\0guest-watch\0")
    with running_mockd(args=("--restore", str(image))) as mock:
        assert _guest_after_restore(mock) == real
