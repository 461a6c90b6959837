"""Give a C loader the dom0 ring connection it needs, when the source has none.

C xenstored sets up its node database when it re-introduces dom0 from dom0's ring
CONNECTION_DATA, so that record must come before any node (4.22: before any watch too, or
it crashes). The mock usually has no dom0 ring (its dom0 clients are sockets), so an image
of it for a C loader gets one synthesised in front of the first connection, watch or node:
conn-id ``SYNTHETIC_CONN_ID`` (the mock numbers its connections from 1), evtchn from the
plan. Should the source list a dom0 ring later after all, that record is folded into the
synthesised one: its watches are re-pointed to it and its pending bytes are reported lost.

Pure: records in, records out.
"""

from __future__ import annotations

from dataclasses import replace

from ..image.records import (
    DOMID_INVALID,
    ConnectionData,
    GlobalData,
    GlobalQuotaData,
    Record,
    RingSpec,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
)

SYNTHETIC_CONN_ID = 0xFFFF_FFF0


class Dom0RingFixup:
    def __init__(self, dom0_evtchn: int, *, unique_id: int | None = None) -> None:
        """``unique_id``: of the synthesised ring (0, "unknown", where the stream has one)."""
        self.dom0_evtchn = dom0_evtchn
        self.unique_id = unique_id
        self.synthesised = False
        self.notes: list[str] = []
        self._seen_dom0 = False
        self._folded: set[int] = set()

    def __call__(self, record: Record) -> list[Record]:
        if isinstance(record, GlobalData | GlobalQuotaData):
            return [record]
        if (
            isinstance(record, WatchData | WatchDataExtended | UnwrittenDepthWatch)
            and record.conn_id in self._folded
        ):
            record = replace(record, conn_id=SYNTHETIC_CONN_ID)
        out: list[Record] = []
        is_dom0 = isinstance(record, ConnectionData) and _is_dom0_ring(record)
        if not self._seen_dom0 and not is_dom0:
            self._seen_dom0 = self.synthesised = True
            spec = RingSpec(0, DOMID_INVALID, self.dom0_evtchn)
            out.append(ConnectionData(SYNTHETIC_CONN_ID, spec, unique_id=self.unique_id))
            self.notes.append(
                f"dom0 ring CONNECTION_DATA synthesised for the C loader (conn-id "
                f"{SYNTHETIC_CONN_ID}, evtchn {self.dom0_evtchn}): the source has no dom0 ring "
                "before its other connections and nodes"
            )
        if is_dom0:
            assert isinstance(record, ConnectionData)
            if self.synthesised:
                self._folded.add(record.conn_id)
                if record.in_data or record.out_data:
                    self.notes.append(
                        f"dom0 ring conn {record.conn_id}: its {len(record.in_data)} input and "
                        f"{len(record.out_data)} output bytes (folded into the synthesised one)"
                    )
                return out
            self._seen_dom0 = True
        out.append(record)
        return out


def _is_dom0_ring(record: ConnectionData) -> bool:
    return isinstance(record.spec, RingSpec) and record.spec.domid == 0
