"""One soak client: writes, watches and transactions until STOP_FILE exists; logs everything.

usage: soak_client.py SOCKET INDEX LOG STOP_FILE. Write SEQ stores the value SEQ at
/soak/INDEX/n(SEQ mod SLOTS) (every fifth one inside a transaction, retried on EAGAIN), so each
write must fire exactly one event on the client's own watch, and the store stays the same size
however long the soak runs (each update pre-copies the whole store). At the end the client
reads every slot back (it must hold the last value written there) and prints one JSON line:
writes, events, lost writes, lost and duplicated events, and why the connection broke (empty
if it did not).
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

SLOTS = 128


def _expect_ok(payload: bytes, path: str) -> None:
    if payload != b"OK\0":
        raise PeerError(f"write {path}: {payload!r}")


def main() -> int:
    socket_path, index, log_path, stop_file = sys.argv[1:5]
    base = f"/soak/{index}"
    writes: Counter[str] = Counter()
    last_value: dict[str, int] = {}
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
                path = f"{base}/n{seq % SLOTS}"
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
                writes[path] += 1
                last_value[path] = seq
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
            for path, seq_written in last_value.items():
                # The last value read back proves the writes survived every update since.
                if client.call(Op.READ, path).payload == f"{seq_written}\0".encode():
                    present.add(path)
            client.close()
        except (PeerError, OSError) as exc:
            broken = str(exc)
            present = set[str]()
            log.write(f"broken {exc}\n")
    result = {
        "writes": sum(writes.values()),
        "events": sum(events.values()),
        "lost_writes": sum(1 for p in last_value if p not in present),
        "lost_events": sum(max(0, n - events[p]) for p, n in writes.items()),
        "duplicated_events": sum(max(0, n - writes[p]) for p, n in events.items()),
        "broken": broken,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
