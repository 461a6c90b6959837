"""Act as a guest domain towards the real 4.17 xenstored, over its shared ring page.

The shim in shared/peer gives every introduced domain a ring page that is a shared anonymous
mapping inside the daemon (``/dev/zero (deleted)`` in /proc/PID/maps). Root can map the same
page through /proc/PID/map_files, so a test writes requests into the request ring and reads
replies and watch events from the response ring exactly as a guest kernel would (layout in
shared/reference/xenstore-ring.txt). The shim's event channels are inert, so instead of an
event the daemon is woken by a round trip on a dom0 socket of our own: C's main loop looks at
every domain ring on each pass.

A ring page is identified by being the one that appeared since the last one was claimed, so
claim a domain's ring right after INTRODUCE (before introducing the next).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path

from wireclient import DEFAULT_TIMEOUT, PeerError, WireClient

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

PAGE_SIZE = 4096
RING_SIZE = 1024
REQ_RING, RSP_RING = 0, 1024
#: req_cons, req_prod, rsp_cons, rsp_prod: free-running u32 indexes.
INDEXES = struct.Struct("<IIII")
INDEXES_AT = 2048
_WAIT_STEP = 0.0005


def shared_zero_pages(pid: int) -> set[str]:
    """Address ranges of the 4 KiB shared anonymous mappings of process ``pid``."""
    pages = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == "/dev/zero":
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if end - start == PAGE_SIZE:
                pages.add(fields[0])
    return pages


class RingStream:
    """The guest end of one domain's ring page (a ``ByteStream`` for WireClient)."""

    def __init__(self, pid: int, page: str, poke: WireClient) -> None:
        fd = os.open(f"/proc/{pid}/map_files/{page}", os.O_RDWR)
        try:
            self._page = mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self._poke_client = poke
        self.page = page

    def indexes(self) -> tuple[int, int, int, int]:
        req_cons, req_prod, rsp_cons, rsp_prod = INDEXES.unpack_from(self._page, INDEXES_AT)
        return req_cons, req_prod, rsp_cons, rsp_prod

    def poke(self) -> None:
        """One dom0 round trip: the daemon's next loop pass reads and writes every ring."""
        self._poke_client.send_raw(encode_message(Op.GET_DOMAIN_PATH, 0, 0, b"0\0"))
        self._poke_client.receive()

    def sendall(self, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while data:
            req_cons, req_prod, _, _ = self.indexes()
            room = RING_SIZE - (req_prod - req_cons) % 2**32
            if room == 0:
                if time.monotonic() > deadline:
                    raise PeerError(f"guest ring {self.page}: request ring stayed full")
                self.poke()
                time.sleep(_WAIT_STEP)
                continue
            start = req_prod % RING_SIZE
            count = min(room, len(data), RING_SIZE - start)
            self._page[REQ_RING + start : REQ_RING + start + count] = data[:count]
            # Data before index: x86 keeps store order, which is all the reader needs.
            struct.pack_into("<I", self._page, INDEXES_AT + 4, (req_prod + count) % 2**32)
            data = data[count:]
        self.poke()

    def recv_within(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            _, _, rsp_cons, rsp_prod = self.indexes()
            available = (rsp_prod - rsp_cons) % 2**32
            if available:
                start = rsp_cons % RING_SIZE
                count = min(available, RING_SIZE - start)
                chunk = bytes(self._page[RSP_RING + start : RSP_RING + start + count])
                struct.pack_into("<I", self._page, INDEXES_AT + 8, (rsp_cons + count) % 2**32)
                return chunk
            if time.monotonic() > deadline:
                return None
            self.poke()
            time.sleep(_WAIT_STEP)

    def close(self) -> None:
        self._page.close()
        self._poke_client.close()


class RingGuests:
    """Hands out guest clients of the real daemon ``pid`` listening on ``socket_path``.

    Pages present now are not rings to hand out, unless ``claimed`` says otherwise (a daemon
    restored from an image has mapped its rings before anyone could look)."""

    def __init__(self, pid: int, socket_path: Path, claimed: set[str] | None = None) -> None:
        self.pid = pid
        self.socket_path = socket_path
        self._claimed = shared_zero_pages(pid) if claimed is None else set(claimed)

    def connect(self, domid: int, timeout: float = DEFAULT_TIMEOUT) -> WireClient:
        """The ring of the domain introduced last: call right after its INTRODUCE."""
        fresh = shared_zero_pages(self.pid) - self._claimed
        if len(fresh) != 1:
            raise PeerError(f"dom{domid}: expected one new ring page, found {sorted(fresh)}")
        page = fresh.pop()
        self._claimed.add(page)
        poke = WireClient.connect(self.socket_path, timeout)
        return WireClient(RingStream(self.pid, page, poke), f"dom{domid} ring", timeout)
