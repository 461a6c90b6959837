"""Soak: consecutive mock -> mock live updates while 8 clients write, watch and commit.

Every third update's successor is broken, each time in another way (test_standby_failures):
those updates must fail with a reason while nothing is lost; the others must succeed. A good
update gets xenstore-control's default budget (-t 60: the successor starts and loads the
whole store within it, on a machine shared with other jobs); a broken one -t 2 (a hanging
successor is given up after it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lusupport import control, mock_launcher
from peerlib import MockDaemon
from test_standby_failures import broken_successor

from xsmig_daemon.wire.ops import Op

UPDATES = int(os.environ.get("XSMIG_SOAK_UPDATES", "200"))
CLIENTS = 8
CLIENT = Path(__file__).resolve().parent / "soak_client.py"
BROKEN_KINDS = (
    "missing",
    "exits 1 at start",
    "crashes mid-load",
    "hangs after loading",
    "closes the handover socket",
)


def test_soak_live_updates_under_load(mockd: MockDaemon, tmp_path: Path) -> None:
    launcher = mock_launcher(tmp_path)
    stop = tmp_path / "stop"
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                str(CLIENT),
                str(mockd.socket_path),
                str(i),
                str(tmp_path / f"client{i}.log"),
                str(stop),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(CLIENTS)
    ]
    pid = mockd.pid
    admin = mockd.connect(timeout=90)
    started = time.monotonic()
    failed = 0
    try:
        for round_ in range(UPDATES):
            if round_ % 3 == 2:
                how = BROKEN_KINDS[(round_ // 3) % len(BROKEN_KINDS)]
                broken = broken_successor(tmp_path / f"broken{round_}", how)
                # "missing": there at -f (C's probe), gone at -s.
                binary = broken if how != "missing" else launcher
                assert control(admin, "live-update", "-f", str(binary)) == "OK", round_
                if how == "missing":
                    launcher.unlink()
                text = control(admin, "live-update", "-s", "-t", "2")
                assert text.startswith("Error activating new binary: "), (round_, how, text)
                failed += 1
                launcher = mock_launcher(tmp_path)
            else:
                assert control(admin, "live-update", "-f", str(launcher)) == "OK", round_
                reply = admin.call(Op.CONTROL, "live-update", "-s", "-t", "60")
                assert reply.payload == b"OK\0", (round_, reply.payload, mockd.log()[-2000:])
            assert mockd.pid == pid and mockd.alive()
    finally:
        elapsed = time.monotonic() - started
        stop.touch()
        outputs = [c.communicate(timeout=60)[0] for c in clients]
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    print(
        f"{UPDATES} live updates ({failed} with a broken successor) in {elapsed:.1f} s "
        f"({elapsed / UPDATES * 1000:.0f} ms each)"
    )
    print(json.dumps(results))
    for result in results:
        assert result["broken"] == ""
        assert result["writes"] > 0
        assert result["lost_writes"] == 0
        assert result["lost_events"] == 0
        assert result["duplicated_events"] == 0
    assert "Traceback" not in mockd.log()
    admin.close()
