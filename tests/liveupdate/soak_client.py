"""One soak client: writes, watches and transactions until STOP_FILE exists; logs everything.

usage: soak_client.py SOCKET INDEX LOG STOP_FILE. Each write creates a new node
/soak/INDEX/nSEQ (every fifth one inside a transaction, retried on EAGAIN), so each one must
fire exactly one event on the client's own watch. At the end the client reads every value
back and prints one JSON line: writes, events, lost writes, lost and duplicated events, and
why the connection broke (empty if it did not).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wireclient import PeerError, WireClient

from xsmig_daemon.wire.ops import Op


def _expect_ok(payload: bytes, path: str) -> None:
    if payload != b"OK\0":
        raise PeerError(f"write {path}: {payload!r}")


def main() -> int:
    socket_path, index, log_path, stop_file = sys.argv[1:5]
    base = f"/soak/{index}"
    written: list[str] = []
    events: Counter[str] = Counter()
    broken = ""
    with open(log_path, "w") as log:
        try:
            client = WireClient.connect(socket_path, timeout=30)
            client.call(Op.WATCH, base, "s")
            client.event()  # the initial event
            seq = 0
            while not os.path.exists(stop_file):
                seq += 1
                path = f"{base}/n{seq}"
                if seq % 5:
                    reply = client.call(Op.WRITE, path, str(seq))
                else:
                    while True:
                        tx = int(client.call(Op.TRANSACTION_START, "").payload.rstrip(b"\0"))
                        client.call(Op.READ, base, tx_id=tx)
                        client.call(Op.WRITE, path, str(seq), tx_id=tx)
                        reply = client.call(Op.TRANSACTION_END, "T", tx_id=tx)
                        if reply.payload != b"EAGAIN\0":
                            break
                _expect_ok(reply.payload, path)
                written.append(path)
                log.write(f"write {path}\n")
                while client.events:
                    event = client.events.popleft().payload.split(b"\0")[0].decode()
                    events[event] += 1
                    log.write(f"event {event}\n")
            # Every event for our writes must be queued by now: a round trip orders them.
            client.call(Op.READ, base)
            while client.events:
                events[client.events.popleft().payload.split(b"\0")[0].decode()] += 1
            present = set()
            for path in written:
                # A value read back proves the write survived every update since.
                if client.call(Op.READ, path).payload == path.rsplit("/n", 1)[1].encode() + b"\0":
                    present.add(path)
            client.close()
        except (PeerError, OSError) as exc:
            broken = str(exc)
            present = set[str]()
            log.write(f"broken {exc}\n")
    result = {
        "writes": len(written),
        "events": sum(events.values()),
        "lost_writes": sum(1 for p in written if p not in present),
        "lost_events": sum(1 for p in written if events[p] == 0),
        "duplicated_events": sum(c - 1 for p, c in events.items() if c > 1),
        "broken": broken,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
