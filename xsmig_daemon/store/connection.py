"""Per-connection state: exactly what a migration stream carries for a connection.

Input is the wire decoder's buffer (received but not processed). Output is a partly sent
message (``out_partial``) followed by whole queued messages (replies and watch events).
A transport sends ``output_chunk()`` and reports progress with ``output_sent(n)``.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from ..image.records import ConnType
from ..wire.features import SUPPORTED_FEATURES
from ..wire.framing import MessageDecoder, encode_message
from ..wire.header import HEADER_SIZE
from ..wire.ops import Op
from ..wire.paths import domain_home
from .domains import Domain
from .transaction import Transaction

#: Stop processing a connection's requests while this many output bytes wait; queue no
#: more watch events for it either (C bounds a non-reading client the same two ways).
OUTPUT_LIMIT = 1 << 20
#: Read no more from a connection while this much unprocessed input is buffered.
INPUT_LIMIT = 16384


@dataclass(frozen=True, slots=True)
class Watch:
    """A registered watch; ``path`` exactly as the client gave it."""

    path: str
    token: bytes
    canonical: str
    depth: int | None = None

    @property
    def relative(self) -> bool:
        return self.path != self.canonical


@dataclass(slots=True)
class _Queued:
    data: bytes
    is_event: bool


class Connection:
    def __init__(
        self,
        kind: ConnType,
        domid: int = 0,
        *,
        fd: int = -1,
        domain: Domain | None = None,
    ) -> None:
        self.kind = kind
        self.domid = domid
        #: Socket clients and dom0 (C's priv_domid) pass every permission and quota check.
        self.privileged = kind is ConnType.SOCKET or domid == 0
        self.fd = fd
        self.domain = domain
        #: Domain this one acts for after SET_TARGET.
        self.target: int | None = None
        self.decoder = MessageDecoder()
        self.out_partial = b""
        self._out_queue: deque[_Queued] = deque()
        self._out_bytes = 0
        self._queued_events: Counter[bytes] = Counter()
        self._queued_replies = 0
        self.watches: list[Watch] = []
        self.transactions: dict[int, Transaction] = {}
        self.next_tx_id = 1
        #: The peer broke the protocol; the transport must close it.
        self.broken = False
        self.dropped_events = 0

    def __repr__(self) -> str:
        where = f"domain {self.domid}" if self.kind is ConnType.RING else f"socket fd {self.fd}"
        return f"<connection {where}>"

    @property
    def home(self) -> str:
        return domain_home(self.domid)

    @property
    def features(self) -> int:
        return self.domain.features if self.domain is not None else SUPPORTED_FEATURES

    # -- output -------------------------------------------------------------------------

    @property
    def output_size(self) -> int:
        return len(self.out_partial) + self._out_bytes

    @property
    def queued_replies(self) -> int:
        return self._queued_replies

    @property
    def queued_messages(self) -> list[bytes]:
        return [item.data for item in self._out_queue]

    def queue_reply(self, op: int, req_id: int, tx_id: int, payload: bytes) -> None:
        self._push(_Queued(encode_message(op, req_id, tx_id, payload), False))

    def queue_event(self, payload: bytes, *, dedup: bool) -> bool:
        """Queue a WATCH_EVENT; False if it was dropped (duplicate or output full)."""
        if dedup and self._queued_events[payload]:
            return False
        if self.output_size >= OUTPUT_LIMIT:
            self.dropped_events += 1
            return False
        self._push(_Queued(encode_message(Op.WATCH_EVENT, 0, 0, payload), True))
        self._queued_events[payload] += 1
        return True

    def queue_raw(self, data: bytes) -> None:
        """Queue already framed messages (restore of pending output)."""
        self._push(_Queued(data, False))

    def _push(self, item: _Queued) -> None:
        self._out_queue.append(item)
        self._out_bytes += len(item.data)
        if not item.is_event:
            self._queued_replies += 1

    def output_chunk(self) -> bytes:
        """The bytes to send next (a partly sent message, else the next whole one)."""
        if self.out_partial:
            return self.out_partial
        return self._out_queue[0].data if self._out_queue else b""

    def output_sent(self, count: int) -> None:
        if not self.out_partial and self._out_queue:
            item = self._out_queue.popleft()
            self._out_bytes -= len(item.data)
            if item.is_event:
                self._queued_events[item.data[HEADER_SIZE:]] -= 1
            else:
                self._queued_replies -= 1
            self.out_partial = item.data
        self.out_partial = self.out_partial[count:]

    def clear_output(self) -> None:
        self.out_partial = b""
        self._out_queue.clear()
        self._out_bytes = 0
        self._queued_events.clear()
        self._queued_replies = 0

    # -- flow control -------------------------------------------------------------------

    def can_process(self, outstanding_quota: int) -> bool:
        if self.broken or self.output_size >= OUTPUT_LIMIT:
            return False
        if self.privileged or not outstanding_quota:
            return True
        return self._queued_replies < outstanding_quota

    def wants_input(self, outstanding_quota: int) -> bool:
        return self.can_process(outstanding_quota) and len(self.decoder.pending) < INPUT_LIMIT
