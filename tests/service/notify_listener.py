"""A stand-in for systemd's notification socket: an AF_UNIX datagram socket in the test."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Notification:
    received: float  # time.monotonic() at arrival
    fields: dict[str, str]


class NotifyListener:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[Notification] = []

    def close(self) -> None:
        self.sock.close()

    def _receive(self, timeout: float) -> Notification | None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
        note = Notification(time.monotonic(), fields)
        self.seen.append(note)
        return note

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0
    ) -> Notification:
        """The first new notification matching ``predicate``; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            note = self._receive(remaining)
            if note is not None and predicate(note.fields):
                return note
        raise AssertionError(f"no matching notification within {timeout} s; seen {self.seen}")

    def collect(self, seconds: float) -> list[Notification]:
        """Everything that arrives within ``seconds``."""
        start = len(self.seen)
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._receive(remaining)
        return self.seen[start:]
