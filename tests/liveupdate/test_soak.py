"""Soak: consecutive mock -> mock live updates while 8 clients write, watch and commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lusupport import control, mock_launcher
from peerlib import MockDaemon

from xsmig_daemon.wire.ops import Op

UPDATES = int(os.environ.get("XSMIG_SOAK_UPDATES", "200"))
CLIENTS = 8
CLIENT = Path(__file__).resolve().parent / "soak_client.py"


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
    admin = mockd.connect(timeout=30)
    started = time.monotonic()
    try:
        for round_ in range(UPDATES):
            assert control(admin, "live-update", "-f", str(launcher)) == "OK", round_
            reply = admin.call(Op.CONTROL, "live-update", "-s", "-t", "5")
            assert reply.payload == b"OK\0", (round_, reply.payload, mockd.log()[-2000:])
            assert mockd.pid == pid
    finally:
        elapsed = time.monotonic() - started
        stop.touch()
        outputs = [c.communicate(timeout=60)[0] for c in clients]
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    print(f"{UPDATES} live updates in {elapsed:.1f} s ({elapsed / UPDATES * 1000:.0f} ms each)")
    print(json.dumps(results))
    for result in results:
        assert result["broken"] == ""
        assert result["writes"] > 0
        assert result["lost_writes"] == 0
        assert result["lost_events"] == 0
        assert result["duplicated_events"] == 0
    assert "Traceback" not in mockd.log()
    admin.close()
