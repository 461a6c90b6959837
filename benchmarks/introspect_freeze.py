"""How long ``CONTROL introspect freeze`` stops the mock, per freeze mode and store size.

    .venv/bin/python benchmarks/introspect_freeze.py [--sizes 10000,100000,1000000]

For each size a mock is started with ``--restore`` on a store of N nodes (1,000 per domain,
as benchmarks/live_update.py builds it); then for each mode one ``introspect freeze 60000
MODE`` is sent and thawed at once: ``freeze ms`` is the daemon's own measure (the ``thaw``
reply: how long it served nobody else), ``request ms`` the freeze request's round trip.
Nothing is read: only the freeze is measured (``benchmarks/export.py --introspect`` times
whole exports).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_update import store_records
from peerlib import start_mockd

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import Header
from xsmig_daemon.wire.ops import Op

MODES = ("snapshot", "capture")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--limit", type=float, default=600.0)
    args = parser.parse_args()
    print(f"{'nodes':>9} {'mode':>9} {'freeze ms':>10} {'request ms':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="xsif", dir="/tmp") as tmp:
            image = Path(tmp) / "store.img"
            with open(image, "wb") as out:
                for chunk in encode_image(store_records(size), Header(1, False)):
                    out.write(chunk)
            mock = start_mockd(
                Path(tmp) / "run", args=["--restore", str(image)], ready_timeout=args.limit
            )
            try:
                client = mock.connect(timeout=args.limit)
                for mode in MODES:
                    started = time.perf_counter()
                    reply = client.call(Op.CONTROL, "introspect", "freeze", "60000", mode)
                    request = time.perf_counter() - started
                    assert reply.payload == b"OK\0", reply.payload
                    thaw = client.call(Op.CONTROL, "introspect", "thaw")
                    frozen = float(thaw.payload.rstrip(b"\0"))
                    print(
                        f"{size:>9} {mode:>9} {frozen * 1000:>10.1f} {request * 1000:>11.1f}",
                        flush=True,
                    )
                client.close()
            finally:
                mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
