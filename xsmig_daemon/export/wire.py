"""The ``wire`` source: any standard xenstored, read as a privileged socket client.

One consistent instant without freezing anybody (live-update.md section 3.1): every node is
read inside ONE transaction that is committed with ``T`` at the end (or, with
``consistency="watch"``, under a watch that proves nothing changed, or repaired until it
does; see consistency.py and converge.py).
``OK`` proves nothing that was read changed before the commit; ``EAGAIN`` (or a node
vanishing mid-walk) throws the attempt away: the output is rewound and the walk starts again,
a bounded number of times with a doubling pause. What the wire cannot show is listed in the
report's fidelity notes and never invented (section 3, "Cannot observe").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field

import trio

from ..client import (
    ClientError,
    Request,
    TransactionConflictError,
    Xenstore,
    XenstoreError,
    connect,
    retry_backoff,
    strings_payload,
)
from ..client.bulk import open_lanes
from ..client.xenstore import parse_bool, parse_int
from ..image.records import (
    DOMID_FIRST_RESERVED,
    DOMID_INVALID,
    STREAM_V2,
    ConnectionData,
    DomainData,
    GlobalData,
    GlobalQuotaData,
    NodeData,
    Permission,
    Quota,
    RecordType,
    RingSpec,
)
from ..wire.ops import Op
from ..wire.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, domain_home
from .consistency import Consistency, transaction_view, watched_view
from .converge import DEFAULT_ROUNDS, Repairer, Snapshot, change_feed, converge
from .errors import SourceError
from .lanewalk import DEFAULT_LANES, LaneWalker
from .select import LeftBehind, node_relates_to
from .source import ExportPlan, RecordOutput, SourceReport
from .walk import DEFAULT_WINDOW, NodeCallback, TreeChanged, TreeWalker

DEFAULT_ATTEMPTS = 8
_DEFAULT_SPECIAL_PERMS = (Permission("n", 0),)

WIRE_LIMITS = (
    "connections: other clients' sockets and domain rings, their pending input/output and "
    "parked requests are invisible over the wire; the image holds none of them",
    "watches of other connections are invisible over the wire; the image holds none",
    "open transactions of other connections are invisible; the image holds none "
    "(they are not part of the committed tree this snapshot shows)",
    "stale flags of permission entries are invisible (GET_PERMS prints stale entries like "
    "live ones); every entry is written with flags 0",
    "SET_TARGET relations and domain unique ids are invisible; tdomid is written as "
    "DOMID_INVALID and no unique-id is recorded",
)

LIVE_UPDATE_LIMITS = (
    "GLOBAL_DATA: the daemon's listening-socket and event-channel fds are invisible (and "
    "meaningless outside its process); the image names fds chosen by the exporter: whoever "
    "starts the loader must open them at those numbers",
    "dom0 ring CONNECTION_DATA is synthesised: evtchn {dom0_evtchn} (xenstored's local port "
    "is invisible over the wire; set with --dom0-evtchn), no pending data, no watches",
)


@dataclass(slots=True)
class _Capabilities:
    quota_names: list[str] | None = None
    features: bool = False
    notes: list[str] = field(default_factory=list)


class WireSource:
    kind = "wire"

    def __init__(
        self,
        socket_path: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = DEFAULT_ATTEMPTS,
        window: int = DEFAULT_WINDOW,
        consistency: Consistency = "transaction",
        lanes: int = DEFAULT_LANES,
    ) -> None:
        self.consistency = consistency
        self.lanes = max(1, lanes)
        self.location = socket_path
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.window = window

    async def export(self, plan: ExportPlan, out: RecordOutput) -> SourceReport:
        report = SourceReport(self.kind, self.location, fidelity_notes=list(WIRE_LIMITS))
        try:
            async with connect(self.location, timeout=self.timeout) as xs:
                await _WireExport(self, xs, plan, out, report).run()
        except ClientError as exc:
            raise SourceError(f"wire source: {exc}") from None
        return report


@dataclass(frozen=True, slots=True)
class _Domain:
    domid: int
    #: The guest-side port published by the toolstack at /local/domain/N/store/port (0 if not).
    guest_port: int


class _WireExport:
    """One export from one connection: probes, the transaction attempts, the domains."""

    def __init__(
        self,
        source: WireSource,
        xs: Xenstore,
        plan: ExportPlan,
        out: RecordOutput,
        report: SourceReport,
    ) -> None:
        self.location = source.location
        self.max_attempts = source.max_attempts
        self.window = source.window
        self.lanes = source.lanes
        self.consistency = source.consistency
        self.xs = xs
        self.plan = plan
        self.out = out
        self.report = report
        self.caps = _Capabilities()

    async def run(self) -> None:
        plan, report = self.plan, self.report
        await self._probe()
        if plan.mode == "live-update":
            report.fidelity_notes.extend(
                note.format(dom0_evtchn=plan.dom0_evtchn) for note in LIVE_UPDATE_LIMITS
            )
        report.fidelity_notes.extend(self.caps.notes)
        if self.consistency == "watch":
            report.fidelity_notes.append(
                "consistency: validated by a watch on /, @introduceDomain and @releaseDomain "
                "(no transaction): no change was committed while the walk ran, or (after a "
                "disturbed walk) the changed paths were re-read until a round saw no change; "
                f"the walk was spread over {self.lanes} connection(s)"
            )
        quotas = await self._global_quotas()
        domains = await self._introduced_domains()
        report.domains = [d.domid for d in domains]
        rings = self._rings(domains)
        for attempt in range(1, self.max_attempts + 1):
            report.attempts = attempt
            try:
                report.nodes = await self._attempt(attempt, quotas, rings)
                break
            except (TreeChanged, TransactionConflictError) as exc:
                if attempt == self.max_attempts:
                    raise SourceError(
                        f"wire source {self.location}: no consistent snapshot after "
                        f"{attempt} attempts ({self.consistency}; last: {exc})"
                    ) from None
                await self.out.rewind()
                await trio.sleep(retry_backoff(attempt))
        await self._domain_records(domains)

    # ---------------------------------------------------------------- probes

    async def _probe(self) -> None:
        caps = self.caps
        # Both probes have empty payloads, which oxenstored 4.17 reads only once more bytes
        # arrive: the trailing request with a payload makes it answer them.
        quota, feature, flush = await self.xs.conn.submit_many(
            (
                Request(Op.GET_QUOTA, b""),
                Request(Op.GET_FEATURE, b""),
                Request(Op.GET_PERMS, strings_payload(("/",))),
            )
        )
        try:
            caps.quota_names = (await quota.payload()).rstrip(b"\0").decode().split()
        except XenstoreError as exc:
            caps.notes.append(
                f"quotas: GET_QUOTA answered {exc.name}; global and per-domain quotas omitted"
            )
        try:
            parse_int(await feature.payload(), "GET_FEATURE")
            caps.features = True
        except XenstoreError as exc:
            caps.notes.append(
                f"features: GET_FEATURE answered {exc.name}; domain feature bits omitted"
            )
        with suppress(XenstoreError):
            await flush.payload()

    async def _global_quotas(self) -> GlobalQuotaData | None:
        plan, caps = self.plan, self.caps
        if plan.mode != "live-update" or caps.quota_names is None:
            return None
        if RecordType.GLOBAL_QUOTA_DATA not in plan.profile.record_types:
            self.report.fidelity_notes.append(
                f"quotas: target {plan.profile.name} has no GLOBAL_QUOTA_DATA; global quotas "
                "omitted"
            )
            return None
        return GlobalQuotaData(domain_quotas=await self._quota_values(caps.quota_names, None))

    async def _quota_values(self, names: list[str], domid: int | None) -> tuple[Quota, ...]:
        args = [(name,) if domid is None else (str(domid), name) for name in names]
        handles = await self.xs.conn.submit_many(
            Request(Op.GET_QUOTA, strings_payload(a)) for a in args
        )
        values: list[Quota] = []
        for name, handle in zip(names, handles, strict=True):
            with suppress(XenstoreError):
                values.append((name, parse_int(await handle.payload(), f"GET_QUOTA {name}")))
        return tuple(values)

    async def _introduced_domains(self) -> list[_Domain]:
        """Domains the daemon has introduced, probed just before the transaction.

        Introduction is not transactional in xenstore and the C loader needs a domain's ring
        before the nodes it owns, so this is read first; the candidates are the numeric
        children of /local/domain (live-update) or the migrated domain."""
        xs, plan = self.xs, self.plan
        if plan.mode == "domain":
            candidates = [_domid(plan)]
        else:
            try:
                names = await xs.directory("/local/domain")
            except XenstoreError:
                names = []
            candidates = sorted(
                int(n) for n in names if n.isdigit() and 0 < int(n) < DOMID_FIRST_RESERVED
            )
        handles = await xs.conn.submit_many(
            Request(Op.IS_DOMAIN_INTRODUCED, strings_payload((str(d),))) for d in candidates
        )
        domains = []
        for domid, handle in zip(candidates, handles, strict=True):
            try:
                introduced = parse_bool(await handle.payload(), "IS_DOMAIN_INTRODUCED")
            except XenstoreError:
                introduced = False
            if introduced:
                port = 0
                with suppress(XenstoreError, ValueError):
                    port = int(await xs.read(f"{domain_home(domid)}/store/port"))
                domains.append(_Domain(domid, port))
        if plan.mode == "domain" and not domains:
            self.report.fidelity_notes.append(
                f"domain {plan.domid} is not introduced: no ring CONNECTION_DATA for it"
            )
        return domains

    def _rings(self, domains: list[_Domain]) -> list[ConnectionData]:
        """Ring CONNECTION_DATA for each introduced guest (conn-id 1 is dom0's in
        live-update mode)."""
        if not domains:
            return []
        listed = ", ".join(f"{d.domid} (port {d.guest_port})" for d in domains)
        self.report.fidelity_notes.append(
            f"ring connections of introduced domains {listed}: evtchn is the guest-side port "
            "published at /local/domain/N/store/port (0 if unpublished), because xenstored's "
            "local port is invisible over the wire; their watches, transactions and pending "
            "data are invisible too"
        )
        first = 2 if self.plan.mode == "live-update" else 1
        return [
            ConnectionData(first + i, RingSpec(d.domid, DOMID_INVALID, d.guest_port))
            for i, d in enumerate(domains)
        ]

    # ---------------------------------------------------------------- the walk

    async def _attempt(
        self, attempt: int, quotas: GlobalQuotaData | None, rings: list[ConnectionData]
    ) -> int:
        """One consistent view: every record up to the special nodes; returns nodes walked."""
        xs = self.xs
        if self.consistency == "transaction":
            # A transaction belongs to one connection: the walk stays on it.
            async with transaction_view(xs) as tx_id:
                specials = await self._special_nodes(tx_id)
                walker = TreeWalker(xs.conn, tx_id, self.window)
                return await self._write_view(specials, quotas, rings, walker.walk)
        async with open_lanes(self.location, self.lanes, timeout=xs.conn.timeout) as lanes:
            lane_walker = LaneWalker(lanes, window=self.window)
            if attempt == 1:
                async with watched_view(xs, attempt):
                    specials = await self._special_nodes(0)
                    return await self._write_view(specials, quotas, rings, lane_walker.walk)
            # The streamed walk was disturbed: repair a buffered one instead (converge.py).
            async with change_feed(xs, attempt) as drain:
                specials = await self._special_nodes(0)
                snapshot = Snapshot()
                repairer = Repairer(snapshot, lane_walker)
                await repairer.first_walk()
                self.report.repair_rounds = await converge(
                    snapshot, repairer, drain, DEFAULT_ROUNDS
                )

        async def replay(emit: NodeCallback) -> None:
            for node, children in snapshot.preorder():
                await emit(node, children)

        return await self._write_view(specials, quotas, rings, replay)

    async def _write_view(
        self,
        all_specials: list[NodeData],
        quotas: GlobalQuotaData | None,
        rings: list[ConnectionData],
        walk: Callable[[NodeCallback], Awaitable[None]],
    ) -> int:
        """The records of one view, nodes from ``walk``; returns nodes walked."""
        plan, out = self.plan, self.out
        walked = 0
        specials = [n for n in all_specials if _wanted(n, plan)]
        if plan.mode == "live-update":
            await out.write(GlobalData(_fd(plan.socket_fd), _fd(plan.evtchn_fd)))
            if quotas is not None:
                await out.write(quotas)
            await out.write(ConnectionData(1, RingSpec(0, DOMID_INVALID, plan.dom0_evtchn)))
        for ring in rings:
            await out.write(ring)
        specials_first = plan.profile.specials_first
        if specials_first:
            for node in specials:
                await out.write(node)

        left = LeftBehind(plan.domid) if plan.domid is not None else None

        async def emit(node: NodeData, _children: list[str]) -> None:
            nonlocal walked
            walked += 1
            if _wanted(node, plan):
                await out.write(node)
            elif left is not None:
                left.consider(node)

        await walk(emit)
        if left is not None:
            self.report.left_to_toolstack = left.paths
        if not specials_first:
            for node in specials:
                await out.write(node)
        return walked

    async def _special_nodes(self, tx_id: int) -> list[NodeData]:
        nodes = []
        for path in (RELEASE_DOMAIN, INTRODUCE_DOMAIN):
            try:
                perms = await self.xs.get_perms(path, tx_id)
            except XenstoreError as exc:
                if exc.name != "EINVAL":
                    raise SourceError(f"wire source: {exc}") from None
                perms = _DEFAULT_SPECIAL_PERMS
                note = (
                    f"{path}: GET_PERMS answered EINVAL (Xen 4.17 does); written with the "
                    "default permissions n0, its real ones are unknown"
                )
                if note not in self.report.fidelity_notes:
                    self.report.fidelity_notes.append(note)
            nodes.append(NodeData(path, b"", perms or _DEFAULT_SPECIAL_PERMS))
        return nodes

    # ---------------------------------------------------------------- domains

    async def _domain_records(self, domains: list[_Domain]) -> None:
        """DOMAIN_DATA (quotas, features) where the target has it, after the nodes."""
        plan, caps = self.plan, self.caps
        if not domains or RecordType.DOMAIN_DATA not in plan.profile.record_types:
            return
        for domain in domains:
            features = 0
            if caps.features and plan.header.version >= STREAM_V2:
                with suppress(XenstoreError):
                    features = await self.xs.get_feature(domain.domid)
            quotas: tuple[Quota, ...] = ()
            if caps.quota_names:
                quotas = await self._quota_values(caps.quota_names, domain.domid)
            wanted = plan.profile.dom0_features
            v2 = plan.header.version >= STREAM_V2
            if domain.domid == 0 and v2 and features & wanted != wanted:
                # The loader applies features as given: dom0 would lose what its daemon
                # always offers it (WATCHDEPTH among them).
                self.report.fidelity_notes.append(
                    f"dom0 features 0x{features:x} over the wire; written as 0x"
                    f"{features | wanted:x}, what {plan.profile.name} gives dom0"
                )
                features |= wanted
            await self.out.write(DomainData(domain.domid, features, quotas))


def _fd(number: int | None) -> int:
    """A GLOBAL_DATA fd: -1 when unset (a xen-* target's loader layout then chooses one)."""
    return -1 if number is None else number


def _wanted(node: NodeData, plan: ExportPlan) -> bool:
    return plan.mode != "domain" or node_relates_to(node, _domid(plan))


def _domid(plan: ExportPlan) -> int:
    assert plan.domid is not None
    return plan.domid
