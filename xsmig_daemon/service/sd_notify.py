"""The sd_notify protocol, written here instead of linking libsystemd.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) and, with
``WatchdogSec=``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``. Each notification is one datagram of
``KEY=VALUE`` lines. Sending is a non-blocking ``sendto``: a datagram either fits in the
socket buffer at once or is dropped, so it never stalls the event loop and never needs a
thread. Without ``NOTIFY_SOCKET`` every call is a no-op, so the service runs the same by hand.

The watchdog ping is sent from a trio task (``run_watchdog``): if the event loop is stuck, the
task does not run, systemd hears nothing and restarts the service -- which is the point.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, MutableMapping

import trio

from .log import get_logger

log = get_logger("notify")


def _socket_address(value: str) -> str | bytes:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None if not asked for.

    WATCHDOG_PID, when set, names the process systemd expects pings from; any other process
    (e.g. a child that inherited the environment) must stay quiet.
    """
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    watchdog_pid = env.get("WATCHDOG_PID", "")
    if watchdog_pid and (not watchdog_pid.isdigit() or int(watchdog_pid) != pid):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """Sends notifications to the service manager, if there is one."""

    def __init__(self, env: MutableMapping[str, str] | None = None) -> None:
        environ: MutableMapping[str, str] = os.environ if env is None else env
        self._address = environ.get("NOTIFY_SOCKET") or None
        self.watchdog_interval = watchdog_interval(environ, os.getpid())
        # A process started from here must not talk to systemd in our name.
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            environ.pop(key, None)
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram ``KEY=VALUE\\n...``; True if it was handed to the kernel."""
        if self._sock is None or self._address is None:
            return False
        text = "".join(f"{key}={_one_line(str(value))}\n" for key, value in fields.items())
        try:
            self._sock.sendto(text.encode(), _socket_address(self._address))
        except OSError as exc:
            # A missing or full notify socket must not take the service down.
            log.debug("sd_notify to %s failed: %s", self._address, exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.notify(READY=1, STATUS=status)

    def status(self, status: str) -> None:
        self.notify(STATUS=status)

    def extend_timeout(self, seconds: float) -> None:
        self.notify(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd (>= 253, Type=notify-reload) match this reload.
        self.notify(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)

    def stopping(self, status: str = "stopping") -> None:
        self.notify(STOPPING=1, STATUS=status)

    def watchdog(self) -> None:
        self.notify(WATCHDOG=1)

    async def run_watchdog(self) -> None:
        """Ping at half the watchdog period for as long as the event loop keeps running."""
        if self.watchdog_interval is None or self._sock is None:
            return
        while True:
            self.watchdog()
            await trio.sleep(self.watchdog_interval)


def _one_line(value: str) -> str:
    return value.replace("\n", " ")
