"""The C xenstored's ends of a migration: what its wire protocol can give and take.

A C daemon (Xen 4.17, 4.20) has no way to receive connection state. As a **destination** the
toolstack's own steps are used: the nodes are written with their permissions (WRITE +
SET_PERMS, pipelined, as dom0), then the domain is introduced (INTRODUCE domid gfn port).
What that cannot carry -- the guest's watches, its pending input and output, its open
transactions -- refuses the migration, naming each, unless ``lossy`` drops them (listed in
the outcome's notes). Conflicts are checked first (domid introduced, a node that exists);
a write or the INTRODUCE failing removes what was written (the nodes fire their watches
twice then: C has no way to write a set of nodes invisibly short of one transaction, which
4.17 makes quadratic in the number of nodes).

As a **source** a C daemon gives what the wire shows: a consistent read of the domain's
nodes (the ``wire`` exporter, with its fidelity notes), and RELEASE after the import.
"""

from __future__ import annotations

from contextlib import suppress

from ..client import Request, Xenstore, XenstoreError, connect, strings_payload
from ..client.xenstore import parse_bool
from ..image.profiles import get_profile
from ..image.records import (
    ConnectionData,
    NodeData,
    Record,
    TransactionData,
    WatchData,
    WatchDataExtended,
)
from ..store.migration import Remap
from ..wire.ops import Op
from ..wire.paths import parent
from .migrate import STREAM_HEADER, MigrationError, RefusedError, Stream
from .source import ExportPlan
from .wire import WireSource


class _Collect:
    """A RecordOutput that keeps the records (a domain's stream is small)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def write(self, record: Record) -> None:
        self.records.append(record)

    async def rewind(self) -> None:
        self.records.clear()


class WireSourceEnd:
    """A C xenstored as the source: a wire read of the domain, RELEASE afterwards."""

    def __init__(self, location: str, timeout: float) -> None:
        self.location = location
        self.timeout = timeout
        self.notes: list[str] = []

    async def export(self, domid: int | None) -> Stream:
        assert domid is not None
        plan = ExportPlan("domain", get_profile("spec"), STREAM_HEADER, domid, timeout=self.timeout)
        out = _Collect()
        report = await WireSource(self.location, timeout=self.timeout).export(plan, out)
        if domid not in report.domains:
            raise MigrationError(f"source {self.location}: domain {domid} is not introduced there")
        self.notes.extend(f"source (wire): {note}" for note in report.fidelity_notes)
        return Stream.from_records(out.records, f"source {self.location}")

    async def release(self, domid: int) -> None:
        async with connect(self.location, timeout=self.timeout) as xs:
            await xs.release(domid)

    async def abort(self) -> None:
        """Nothing was frozen or changed."""


def unsupported(records: list[Record]) -> list[str]:
    """What a C destination cannot be given, one entry per kind, naming each item."""
    watches = [r for r in records if isinstance(r, WatchData | WatchDataExtended)]
    transactions = [r for r in records if isinstance(r, TransactionData)]
    found = []
    if watches:
        names = ", ".join(f"{w.path} token {w.token}" for w in watches)
        found.append(f"{len(watches)} watch{'es' if len(watches) != 1 else ''} ({names})")
    for conn in (r for r in records if isinstance(r, ConnectionData)):
        if conn.in_data:
            found.append(f"{len(conn.in_data)} bytes of pending input")
        if conn.out_data:
            found.append(f"{len(conn.out_data)} bytes of pending output")
    if transactions:
        ids = ", ".join(str(t.tx_id) for t in transactions)
        found.append(f"{len(transactions)} open transaction(s) (tx {ids})")
    return found


class WireDestination:
    """A C xenstored as the destination (see the module doc)."""

    def __init__(
        self,
        xs: Xenstore,
        location: str,
        *,
        lossy: bool,
        gfn: int | None = None,
        evtchn: int | None = None,
    ) -> None:
        self.xs = xs
        self.location = location
        self.lossy = lossy
        self.gfn = gfn
        self.evtchn = evtchn

    async def prepare(self, domid: int | None) -> None:
        if domid is not None:
            await self._domid_free(domid)

    async def _domid_free(self, domid: int) -> None:
        reply = await self.xs.conn.call(Op.IS_DOMAIN_INTRODUCED, str(domid))
        if parse_bool(reply, "IS_DOMAIN_INTRODUCED"):
            raise RefusedError(
                f"destination {self.location}: domain {domid} is already introduced there"
            )

    async def load(self, stream: Stream, domid: int) -> list[str]:
        lost = unsupported(stream.records)
        if lost and not self.lossy:
            raise RefusedError(
                f"destination {self.location} is a C xenstored, which cannot take "
                f"{'; '.join(lost)} (--lossy drops them)"
            )
        remap = Remap(stream.domid, domid)
        nodes = [
            remap.node(r)
            for r in stream.records
            if isinstance(r, NodeData) and r.committed and not r.path.startswith("@")
        ]
        await self._domid_free(domid)
        tops = _tops(nodes)
        await self._nodes_absent(tops)
        try:
            await self._write(nodes)
            gfn, port = self._ring(nodes, domid)
            await self.xs.introduce(domid, gfn, port)
        except XenstoreError as exc:
            await self._remove(tops)
            raise RefusedError(
                f"destination {self.location}: {exc}; the nodes written were removed"
            ) from None
        return [f"dropped for the C destination: {item}" for item in lost]

    async def _nodes_absent(self, tops: list[str]) -> None:
        handles = await self.xs.conn.submit_many(
            Request(Op.GET_PERMS, strings_payload((path,))) for path in tops
        )
        for path, handle in zip(tops, handles, strict=True):
            try:
                await handle.payload()
            except XenstoreError as exc:
                if exc.name == "ENOENT":
                    continue
                raise RefusedError(f"destination {self.location}: {path}: {exc}") from None
            raise RefusedError(f"destination {self.location}: node {path} exists there")

    async def _write(self, nodes: list[NodeData]) -> None:
        requests = []
        for node in nodes:
            requests.append(Request(Op.WRITE, strings_payload((node.path,)) + node.value))
            requests.append(
                Request(Op.SET_PERMS, strings_payload((node.path, *map(str, node.perms))))
            )
        handles = await self.xs.conn.submit_many(requests)
        for handle in handles:
            await handle.payload()

    def _ring(self, nodes: list[NodeData], domid: int) -> tuple[int, int]:
        """INTRODUCE's gfn and port: given, else what the toolstack published in the home."""
        values = {n.path: n.value for n in nodes}
        home = f"/local/domain/{domid}/store/"
        gfn = self.gfn if self.gfn is not None else _number(values.get(home + "ring-ref"))
        port = self.evtchn if self.evtchn is not None else _number(values.get(home + "port"))
        return gfn or 1, port or 1

    async def _remove(self, tops: list[str]) -> None:
        with suppress(XenstoreError):
            handles = await self.xs.conn.submit_many(
                Request(Op.RM, strings_payload((path,))) for path in tops
            )
            for handle in handles:
                with suppress(XenstoreError):
                    await handle.payload()


def _tops(nodes: list[NodeData]) -> list[str]:
    """The nodes whose parent is not in the stream: if they are absent, all are."""
    paths = {n.path for n in nodes}
    return [n.path for n in nodes if parent(n.path) not in paths]


def _number(value: bytes | None) -> int:
    try:
        return int(value or b"0")
    except ValueError:
        return 0
