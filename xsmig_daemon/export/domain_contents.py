"""What a ``--domain N`` stream holds, for the manifest, and "unknown domain" detection.

``DomainContents`` sits between a source and the writer and notes every record that goes
into the stream: N's ring connection (pending input and output, the partly sent reply,
unique-id, event channel, SET_TARGET), its watches with their depth, its open transactions
with the nodes each read, wrote or deleted, the home subtree's size, the nodes it owns
elsewhere, the special nodes naming it, its DOMAIN_DATA. The manifest's ``migration`` object
is ``to_json()`` plus the source's ``left_to_toolstack`` list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..image.records import (
    DEPTH_UNLIMITED,
    DOMID_INVALID,
    ConnectionData,
    DomainData,
    NodeAccess,
    NodeData,
    Record,
    RingSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
)
from ..wire.paths import domain_home
from .source import RecordOutput


def _access(access: NodeAccess) -> str:
    if access == NodeAccess.DELETED:
        return "deleted"
    return "written" if access & NodeAccess.WRITTEN else "read"


@dataclass(slots=True)
class _Seen:
    connection: dict[str, Any] | None = None
    watches: list[dict[str, Any]] = field(default_factory=list)
    transactions: dict[int, list[dict[str, str]]] = field(default_factory=dict)
    home_nodes: int = 0
    owned_elsewhere: list[str] = field(default_factory=list)
    special_nodes: list[str] = field(default_factory=list)
    domain_data: dict[str, Any] | None = None


class DomainContents:
    """A RecordOutput wrapper noting what the stream of domain ``domid`` holds."""

    def __init__(self, inner: RecordOutput, domid: int) -> None:
        self.inner = inner
        self.domid = domid
        self.home = domain_home(domid)
        self.seen = _Seen()

    async def write(self, record: Record) -> None:
        self._note(record)
        await self.inner.write(record)

    async def rewind(self) -> None:
        self.seen = _Seen()
        await self.inner.rewind()

    @property
    def empty(self) -> bool:
        """Nothing of the domain: not introduced, no node relates to it, no DOMAIN_DATA."""
        seen = self.seen
        return (
            seen.connection is None
            and not seen.home_nodes
            and not seen.owned_elsewhere
            and seen.domain_data is None
        )

    def _note(self, record: Record) -> None:
        seen = self.seen
        match record:
            case ConnectionData(spec=RingSpec() as spec):
                seen.connection = {
                    "evtchn": spec.evtchn,
                    "target": None if spec.tdomid == DOMID_INVALID else spec.tdomid,
                    "pending_input_bytes": len(record.in_data),
                    "pending_output_bytes": len(record.out_data),
                    "partly_sent_reply_bytes": record.out_resp_len,
                    "unique_id": record.unique_id,
                }
            case WatchDataExtended():
                depth = None if record.depth == DEPTH_UNLIMITED else record.depth
                seen.watches.append({"path": record.path, "token": record.token, "depth": depth})
            case WatchData():
                seen.watches.append({"path": record.path, "token": record.token, "depth": None})
            case TransactionData():
                seen.transactions[record.tx_id] = []
            case NodeData() if not record.committed:
                seen.transactions.setdefault(record.tx_id, []).append(
                    {"path": record.path, "access": _access(record.access)}
                )
            case NodeData() if record.path.startswith("@"):
                seen.special_nodes.append(record.path)
            case NodeData() if record.path == self.home or record.path.startswith(self.home + "/"):
                seen.home_nodes += 1
            case NodeData():
                seen.owned_elsewhere.append(record.path)
            case DomainData():
                seen.domain_data = {"features": record.features, "quotas": dict(record.quotas)}

    def to_json(self, left_to_toolstack: list[str]) -> dict[str, Any]:
        seen = self.seen
        return {
            "domid": self.domid,
            "connection": seen.connection,
            "watches": seen.watches,
            "transactions": [
                {"tx_id": tx_id, "nodes": nodes} for tx_id, nodes in seen.transactions.items()
            ],
            "home": self.home,
            "home_nodes": seen.home_nodes,
            "owned_elsewhere": seen.owned_elsewhere,
            "special_nodes": seen.special_nodes,
            "domain_data": seen.domain_data,
            "left_to_toolstack": left_to_toolstack,
        }
