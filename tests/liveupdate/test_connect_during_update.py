"""Clients that connect while live updates happen are accepted and carried over, never reset."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from lusupport import control, mock_launcher
from peerlib import MockDaemon

from xsmig_daemon.wire.framing import HEADER_SIZE, decode_header, encode_message
from xsmig_daemon.wire.ops import Op

UPDATES = 30


def _one_round_trip(path: str) -> str | None:
    """Connect, READ /, wait for the reply; the error text if the connection broke."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(20)
            sock.connect(path)
            sock.sendall(encode_message(Op.READ, 7, 0, b"/\0"))
            header = b""
            while len(header) < HEADER_SIZE:
                chunk = sock.recv(HEADER_SIZE - len(header))
                if not chunk:
                    return "closed before the reply"
                header += chunk
            op, req_id, _, _ = decode_header(header)
            return None if (op, req_id) == (Op.READ, 7) else f"unexpected reply {op}/{req_id}"
    except OSError as exc:
        return str(exc)


def test_clients_connecting_during_updates_are_never_reset(
    mockd: MockDaemon, tmp_path: Path
) -> None:
    launcher = mock_launcher(tmp_path)
    stop = threading.Event()
    failures: list[str] = []
    attempts = 0

    def connect_in_a_loop() -> None:
        nonlocal attempts
        while not stop.is_set():
            attempts += 1
            error = _one_round_trip(str(mockd.socket_path))
            if error is not None:
                failures.append(error)

    connectors = [threading.Thread(target=connect_in_a_loop) for _ in range(4)]
    for thread in connectors:
        thread.start()
    admin = mockd.connect(timeout=30)
    try:
        for round_ in range(UPDATES):
            assert control(admin, "live-update", "-f", str(launcher)) == "OK", round_
            reply = admin.call(Op.CONTROL, "live-update", "-s", "-t", "5")
            assert reply.payload == b"OK\0", (round_, reply.payload)
    finally:
        stop.set()
        for thread in connectors:
            thread.join(60)
        admin.close()
    assert attempts > UPDATES
    assert failures == []
