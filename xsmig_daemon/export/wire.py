"""The ``wire`` source: any standard xenstored, read as a privileged socket client.

One consistent instant without freezing anybody (live-update.md section 3.1): every node is
read inside ONE transaction that is committed with ``T`` at the end. ``OK`` proves nothing
that was read changed before the commit; ``EAGAIN`` (or a node vanishing mid-walk) throws the
attempt away: the output is rewound and the walk starts again, a bounded number of times with
a doubling pause. What the wire cannot show is listed in the report's fidelity notes and
never invented (section 3, "Cannot observe").
"""

from __future__ import annotations

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
from ..client.xenstore import parse_int, path_request
from ..image.records import (
    DOMID_INVALID,
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
from .errors import SourceError
from .select import node_relates_to
from .source import ExportPlan, RecordOutput, SourceReport
from .walk import DEFAULT_WINDOW, TreeChanged, TreeWalker

DEFAULT_ATTEMPTS = 8
#: Loaders that expect the special nodes before the tree, as C 4.17 writes them (spec 9.1).
_SPECIALS_FIRST = frozenset({"xen-4.17"})
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
    "meaningless outside its process); the image names fds {socket_fd}/{evtchn_fd} chosen "
    "by the exporter: whoever starts the loader must open them at those numbers",
    "dom0 ring CONNECTION_DATA is synthesised: evtchn {dom0_evtchn} (xenstored's local port "
    "is invisible over the wire; set with --dom0-evtchn), no pending data, no watches",
)


@dataclass(slots=True)
class _Capabilities:
    quota_names: list[str] | None = None
    features: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Attempt:
    """What one transaction's walk collected besides the nodes it emitted."""

    domain_candidates: list[int] = field(default_factory=list)
    nodes: int = 0


class WireSource:
    kind = "wire"

    def __init__(
        self,
        socket_path: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = DEFAULT_ATTEMPTS,
        window: int = DEFAULT_WINDOW,
    ) -> None:
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
        self.xs = xs
        self.plan = plan
        self.out = out
        self.report = report

    async def run(self) -> None:
        xs, plan, out, report = self.xs, self.plan, self.out, self.report
        caps = await self._probe(xs)
        if plan.mode == "live-update":
            report.fidelity_notes.extend(
                note.format(
                    socket_fd=plan.socket_fd,
                    evtchn_fd=plan.evtchn_fd,
                    dom0_evtchn=plan.dom0_evtchn,
                )
                for note in LIVE_UPDATE_LIMITS
            )
        report.fidelity_notes.extend(caps.notes)
        quotas = await self._global_quotas(xs, plan, caps)
        migrated_ring = await self._migrated_ring(xs, plan, report)
        for attempt in range(1, self.max_attempts + 1):
            report.attempts = attempt
            try:
                walked = await self._attempt(quotas, migrated_ring)
                break
            except (TreeChanged, TransactionConflictError) as exc:
                if attempt == self.max_attempts:
                    raise SourceError(
                        f"wire source {self.location}: no consistent snapshot after "
                        f"{attempt} transactions (last: {exc})"
                    ) from None
                await out.rewind()
                await trio.sleep(retry_backoff(attempt))
        report.nodes = walked.nodes
        await self._domains(caps, walked)

    # ---------------------------------------------------------------- probes

    async def _probe(self, xs: Xenstore) -> _Capabilities:
        caps = _Capabilities()
        try:
            caps.quota_names = (await xs.get_quota()).rstrip(b"\0").decode().split()
        except XenstoreError as exc:
            caps.notes.append(
                f"quotas: GET_QUOTA answered {exc.name}; global and per-domain quotas omitted"
            )
        try:
            await xs.get_feature()
            caps.features = True
        except XenstoreError as exc:
            caps.notes.append(
                f"features: GET_FEATURE answered {exc.name}; domain feature bits omitted"
            )
        return caps

    async def _global_quotas(
        self, xs: Xenstore, plan: ExportPlan, caps: _Capabilities
    ) -> GlobalQuotaData | None:
        if plan.mode != "live-update" or caps.quota_names is None:
            return None
        if RecordType.GLOBAL_QUOTA_DATA not in plan.profile.record_types:
            caps.notes.append(
                f"quotas: target {plan.profile.name} has no GLOBAL_QUOTA_DATA; global quotas "
                "omitted"
            )
            return None
        values = await self._quota_values(xs, caps.quota_names, ())
        return GlobalQuotaData(domain_quotas=values)

    async def _quota_values(
        self, xs: Xenstore, names: list[str], prefix: tuple[str, ...]
    ) -> tuple[Quota, ...]:
        handles = await xs.conn.submit_many(
            [path_request(Op.GET_QUOTA, name, 0) for name in names]
            if not prefix
            else [_quota_request(prefix[0], name) for name in names]
        )
        values: list[Quota] = []
        for name, handle in zip(names, handles, strict=True):
            try:
                values.append((name, parse_int(await handle.payload(), f"GET_QUOTA {name}")))
            except XenstoreError:
                continue
        return tuple(values)

    async def _migrated_ring(
        self, xs: Xenstore, plan: ExportPlan, report: SourceReport
    ) -> ConnectionData | None:
        """Domain mode: the migrated domain's ring, if the daemon knows the domain."""
        if plan.mode != "domain":
            return None
        assert plan.domid is not None
        if not await _introduced(xs, plan.domid):
            report.fidelity_notes.append(
                f"domain {plan.domid} is not introduced: no ring CONNECTION_DATA for it"
            )
            return None
        port = 0
        with suppress(XenstoreError, ValueError):
            port = int(await xs.read(f"{domain_home(plan.domid)}/store/port"))
        report.fidelity_notes.append(
            f"domain {plan.domid} ring: evtchn {port} is the guest-side port published at "
            f"{domain_home(plan.domid)}/store/port (xenstored's local port is invisible; 0 if "
            "unpublished); its watches, transactions and pending data are invisible"
        )
        return ConnectionData(1, RingSpec(plan.domid, DOMID_INVALID, port))

    # ---------------------------------------------------------------- the walk

    async def _attempt(
        self, quotas: GlobalQuotaData | None, migrated_ring: ConnectionData | None
    ) -> _Attempt:
        xs, plan, out, report = self.xs, self.plan, self.out, self.report
        walked = _Attempt()
        async with xs.transaction() as tx_id:
            specials = await self._special_nodes(xs, tx_id, report)
            if plan.mode == "live-update":
                await out.write(GlobalData(plan.socket_fd, plan.evtchn_fd))
                if quotas is not None:
                    await out.write(quotas)
                await out.write(ConnectionData(1, RingSpec(0, DOMID_INVALID, plan.dom0_evtchn)))
            elif migrated_ring is not None:
                await out.write(migrated_ring)
            specials = [node for node in specials if _wanted(node, plan)]
            specials_first = plan.profile.name in _SPECIALS_FIRST
            if specials_first:
                for node in specials:
                    await out.write(node)

            async def emit(node: NodeData, children: list[str]) -> None:
                walked.nodes += 1
                if node.path == "/local/domain":
                    walked.domain_candidates = sorted(
                        int(name) for name in children if name.isdigit() and int(name) < 0x7FF0
                    )
                if _wanted(node, plan):
                    await out.write(node)

            walker = TreeWalker(xs.conn, tx_id, self.window)
            await walker.walk(emit)
            if not specials_first:
                for node in specials:
                    await out.write(node)
        return walked

    async def _special_nodes(
        self, xs: Xenstore, tx_id: int, report: SourceReport
    ) -> list[NodeData]:
        nodes = []
        for path in (RELEASE_DOMAIN, INTRODUCE_DOMAIN):
            try:
                perms = await xs.get_perms(path, tx_id)
            except XenstoreError as exc:
                if exc.name != "EINVAL":
                    raise SourceError(f"wire source: {exc}") from None
                perms = _DEFAULT_SPECIAL_PERMS
                note = (
                    f"{path}: GET_PERMS answered EINVAL (Xen 4.17 does); written with the "
                    "default permissions n0, its real ones are unknown"
                )
                if note not in report.fidelity_notes:
                    report.fidelity_notes.append(note)
            nodes.append(NodeData(path, b"", perms or _DEFAULT_SPECIAL_PERMS))
        return nodes

    # ---------------------------------------------------------------- domains

    async def _domains(self, caps: _Capabilities, walked: _Attempt) -> None:
        """Introduced domains, probed right after the commit (introduction is not
        transactional in xenstore, so this is the closest instant available)."""
        xs, plan, out, report = self.xs, self.plan, self.out, self.report
        candidates = [plan.domid] if plan.mode == "domain" else walked.domain_candidates
        introduced = [d for d in candidates if d is not None and await _introduced(xs, d)]
        report.domains = introduced
        if not introduced:
            return
        if RecordType.DOMAIN_DATA not in plan.profile.record_types:
            if plan.mode == "live-update":
                listed = ", ".join(str(d) for d in introduced)
                report.fidelity_notes.append(
                    f"introduced domains {listed}: target {plan.profile.name} records a domain "
                    "only through its ring CONNECTION_DATA, whose xenstored-local event "
                    "channel is invisible over the wire; they are not in the image and must "
                    "be introduced again by the toolstack"
                )
            return
        for domid in introduced:
            features = 0
            if caps.features and plan.header.version >= 2:
                try:
                    features = await xs.get_feature(domid)
                except XenstoreError:
                    features = 0
            quotas: tuple[Quota, ...] = ()
            if caps.quota_names:
                quotas = await self._quota_values(xs, caps.quota_names, (str(domid),))
            await out.write(DomainData(domid, features, quotas))


def _quota_request(domid: str, name: str) -> Request:
    return Request(Op.GET_QUOTA, strings_payload((domid, name)))


async def _introduced(xs: Xenstore, domid: int) -> bool:
    try:
        return await xs.is_domain_introduced(domid)
    except XenstoreError:
        return False


def _wanted(node: NodeData, plan: ExportPlan) -> bool:
    return plan.mode != "domain" or node_relates_to(node, _domid(plan))


def _domid(plan: ExportPlan) -> int:
    assert plan.domid is not None
    return plan.domid
