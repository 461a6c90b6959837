"""Rewrite a record stream for another version, byte order or loader, record by record.

``ImageConverter.convert()`` maps one input record to the output record (or ``None`` when the
target cannot hold it) and keeps a ``LossReport`` of everything it dropped or changed. It is
pure: the caller decides whether losses are acceptable (``--lossy``) and where bytes go.

What each target cannot hold (see shared/spec/image-format.md sections 4, 5 and 9):

* record types outside the loader profile (``Profile.record_types``): TRANSACTION_DATA and
  the transaction's NODE_DATA records (C applies them as committed nodes, so they must go),
  GLOBAL_QUOTA_DATA, DOMAIN_DATA;
* WATCH_DATA_EXTENDED in a version 1 stream or for a loader without type 8: a watch without a
  depth limit becomes a plain WATCH_DATA (lossless); a depth-limited one also becomes a plain
  watch and its depth limit is reported as lost (the client may get extra events, which
  xenstore clients must tolerate anyway, instead of losing the watch altogether);
* DOMAIN_DATA ``features`` in a version 1 stream;
* the connection ``unique-id`` for a loader that reads version 1 only (Xen 4.17 predates it);
* pending input longer than 65535 bytes (in-data-len is 16 bits);
* records of unknown type when the byte order changes (their body cannot be converted).

Omissions (``omitted``, never refused): a GLOBAL_QUOTA_DATA or DOMAIN_DATA record for a
loader without that type, when it holds only what that loader starts with anyway (C
xenstored's default quotas, no per-domain overrides, no features): nothing is lost.

Repairs (``repairs``, always made and listed, never refused: what they change was already
broken in the input) of what Xen 4.22 writes into its own dumps (docs/upstream.md):

* a WATCH_DATA_EXTENDED in 4.22's writer layout (``UnwrittenDepthWatch``: its depth was
  never written) becomes a plain WATCH_DATA, so the watch survives without its depth limit;
* for a C loader, a DOMAIN_DATA for a domain that no earlier record made known (no ring
  connection, target or node owner: 4.22 dumps those, and its loader then aborts) is dropped;
* dom0's DOMAIN_DATA for a loader that applies features as given (``Profile.dom0_features``)
  gets the features that loader gives dom0, instead of losing WATCHDEPTH to a 0.

Byte-order conversion also converts the 16-byte wire headers embedded in CONNECTION_DATA
pending data (spec 5.3): every complete header, and the header of a trailing message whose
payload is incomplete. It cannot always be done exactly:

* a trailing *partial header* cut inside one of its four 32-bit fields cannot be converted
  (the missing bytes of that field are still with the client, in the old order): those bytes
  are dropped (a loss); a partial header cut on a field boundary has its whole fields
  converted;
* the ``out-resp-len`` remainder of a partly sent reply may start anywhere in a message,
  inside the header included, and nothing in the stream says where; it is dropped (a loss)
  and ``out-resp-len`` becomes 0, so the output holds only complete, converted messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from ..wire.header import swap_wire_messages
from .profiles import Profile
from .quotas import default_quotas
from .records import (
    DEPTH_UNLIMITED,
    DOMID_INVALID,
    STREAM_V2,
    U16_MAX,
    ConnectionData,
    DomainData,
    GlobalQuotaData,
    Header,
    NodeData,
    Record,
    RecordType,
    RingSpec,
    TransactionData,
    UnknownRecord,
    UnwrittenDepthWatch,
    WatchData,
    WatchDataExtended,
)

#: in-data-len of CONNECTION_DATA is a u16.
PENDING_INPUT_MAX = U16_MAX
EXAMPLES_PER_LOSS = 3

#: Loss kinds: key -> (singular, plural) description.
LOSS_KINDS: dict[str, tuple[str, str]] = {
    "transaction": ("open transaction", "open transactions"),
    "transaction-node": ("transaction node", "transaction nodes"),
    "global-quota": ("GLOBAL_QUOTA_DATA record", "GLOBAL_QUOTA_DATA records"),
    "domain-data": ("DOMAIN_DATA record", "DOMAIN_DATA records"),
    "domain-features": ("domain feature set", "domain feature sets"),
    "watch-extended": ("WATCH_DATA_EXTENDED record", "WATCH_DATA_EXTENDED records"),
    "watch-depth": ("watch depth limit", "watch depth limits"),
    "unique-id": ("connection unique-id", "connection unique-ids"),
    "pending-input": ("oversized pending input", "oversized pending inputs"),
    "partial-header": ("ambiguous partial wire header", "ambiguous partial wire headers"),
    "reply-remainder": ("partly sent reply remainder", "partly sent reply remainders"),
    "unknown-record": ("record of unknown type", "records of unknown type"),
    # repairs
    "unwritten-depth": (
        "depth watch whose depth Xen 4.22 never wrote (now depth-less)",
        "depth watches whose depth Xen 4.22 never wrote (now depth-less)",
    ),
    "unknown-domain": (
        "DOMAIN_DATA record of a domain the loader does not know",
        "DOMAIN_DATA records of domains the loader does not know",
    ),
    "dom0-features": ("dom0 feature set restored", "dom0 feature sets restored"),
    # omissions
    "default-global-quota": (
        "GLOBAL_QUOTA_DATA record holding the loader's own defaults",
        "GLOBAL_QUOTA_DATA records holding the loader's own defaults",
    ),
    "default-domain-data": (
        "DOMAIN_DATA record holding only defaults",
        "DOMAIN_DATA records holding only defaults",
    ),
}


@dataclass
class LossReport:
    """What a conversion dropped or changed, by kind, with a few examples each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES_PER_LOSS:
            shown.append(example)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def lines(self, skip: Collection[str] = ()) -> list[str]:
        """One line per kind (but those in ``skip``):
        ``3 transaction nodes (e.g. /a in tx 1 on conn 2, ...)``."""
        result = []
        for kind, count in self.counts.items():
            if kind in skip:
                continue
            singular, plural = LOSS_KINDS[kind]
            shown = self.examples[kind]
            more = ", ..." if count > len(shown) else ""
            result.append(
                f"{count} {singular if count == 1 else plural} ({', '.join(shown)}{more})"
            )
        return result

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"kind": kind, "count": count, "examples": self.examples[kind]}
            for kind, count in self.counts.items()
        ]


@dataclass
class ConversionReport:
    """Everything a conversion did besides copying: ``repairs`` (broken input records put
    right), ``omitted`` (records the loader would only restore to its own defaults) and
    ``losses`` (what the target cannot hold)."""

    losses: LossReport = field(default_factory=LossReport)
    repairs: LossReport = field(default_factory=LossReport)
    omitted: LossReport = field(default_factory=LossReport)

    def notes(self, profile: Profile) -> list[str]:
        """One line per kind, as the exporter's fidelity notes."""
        return (
            [f"repaired for {profile.name}: {line}" for line in self.repairs.lines()]
            + [f"not carried for {profile.name}: {line}" for line in self.omitted.lines()]
            + [f"lost converting for {profile.name}: {line}" for line in self.losses.lines()]
        )


def _defaults_only(quotas: Collection[tuple[str, int]]) -> bool:
    """Every quota is one C xenstored knows, at its default value."""
    defaults = default_quotas()
    return all(defaults.get(name) == value for name, value in quotas)


def describe_connection(record: ConnectionData) -> str:
    spec = record.spec
    if isinstance(spec, RingSpec):
        return f"conn {record.conn_id} (ring dom{spec.domid})"
    return f"conn {record.conn_id} (socket fd {spec.fd})"


class ImageConverter:
    """Maps input records to records of ``target`` for ``profile``; see the module doc."""

    def __init__(self, source: Header, target: Header, profile: Profile) -> None:
        self.source = source
        self.target = target
        self.profile = profile
        self.report = ConversionReport()
        self._known_domains: set[int] = set()
        self._swap = source.big_endian != target.big_endian
        self._types = profile.record_types
        self._keeps_unique_id = max(profile.versions) >= STREAM_V2
        self._keeps_watch_ext = (
            target.version >= STREAM_V2 and RecordType.WATCH_DATA_EXTENDED in profile.record_types
        )
        self._conn_names: dict[int, str] = {}

    def _conn(self, conn_id: int) -> str:
        return self._conn_names.get(conn_id, f"conn {conn_id}")

    def convert(self, record: Record) -> Record | None:
        match record:
            case NodeData():
                if not record.conn_id and record.perms:
                    self._known_domains.add(record.perms[0].domid)
                if record.conn_id and RecordType.TRANSACTION_DATA not in self._types:
                    self.report.losses.add(
                        "transaction-node",
                        f"{record.path} in tx {record.tx_id} on {self._conn(record.conn_id)}",
                    )
                    return None
                return record
            case ConnectionData():
                return self._connection(record)
            case WatchDataExtended():
                return self._watch_ext(record)
            case UnwrittenDepthWatch():
                self.report.repairs.add(
                    "unwritten-depth",
                    f"{record.path} token {record.token} on {self._conn(record.conn_id)}",
                )
                return WatchData(record.conn_id, record.path, record.token)
            case TransactionData():
                if RecordType.TRANSACTION_DATA not in self._types:
                    self.report.losses.add(
                        "transaction", f"tx {record.tx_id} on {self._conn(record.conn_id)}"
                    )
                    return None
                return record
            case GlobalQuotaData():
                if RecordType.GLOBAL_QUOTA_DATA not in self._types:
                    names = ", ".join(n for n, _ in record.domain_quotas + record.global_quotas)
                    if not record.global_quotas and _defaults_only(record.domain_quotas):
                        self.report.omitted.add("default-global-quota", names or "empty")
                    else:
                        self.report.losses.add("global-quota", names or "empty")
                    return None
                return record
            case DomainData():
                return self._domain(record)
            case UnknownRecord():
                if self._swap:
                    self.report.losses.add(
                        "unknown-record", f"type {record.type}, {len(record.body)} bytes"
                    )
                    return None
                return record
        return record

    def _domain(self, record: DomainData) -> DomainData | None:
        if RecordType.DOMAIN_DATA not in self._types:
            if record.features == 0 and _defaults_only(record.quotas):
                self.report.omitted.add("default-domain-data", f"dom{record.domid}")
            else:
                self.report.losses.add("domain-data", f"dom{record.domid}")
            return None
        if self.profile.is_c_loader and record.domid not in self._known_domains:
            self.report.repairs.add("unknown-domain", f"dom{record.domid}")
            return None
        wanted = self.profile.dom0_features
        if (
            record.domid == 0
            and self.target.version >= STREAM_V2
            and record.features & wanted != wanted
        ):
            self.report.repairs.add(
                "dom0-features", f"0x{record.features:x} -> 0x{record.features | wanted:x}"
            )
            record = replace(record, features=record.features | wanted)
        if record.features and self.target.version < STREAM_V2:
            self.report.losses.add("domain-features", f"dom{record.domid} 0x{record.features:x}")
            return replace(record, features=0)
        return record

    def _watch_ext(self, record: WatchDataExtended) -> Record:
        if self._keeps_watch_ext:
            return record
        if record.depth != DEPTH_UNLIMITED:
            self.report.losses.add(
                "watch-depth",
                f"{record.path} token {record.token} depth {record.depth} on "
                f"{self._conn(record.conn_id)}",
            )
        return WatchData(record.conn_id, record.path, record.token)

    def _connection(self, record: ConnectionData) -> ConnectionData:
        name = describe_connection(record)
        if isinstance(record.spec, RingSpec):
            self._known_domains.add(record.spec.domid)
            if record.spec.tdomid != DOMID_INVALID:
                self._known_domains.add(record.spec.tdomid)
        self._conn_names[record.conn_id] = name
        changes: dict[str, object] = {}
        lose = self.report.losses.add
        if record.unique_id is not None and not self._keeps_unique_id:
            lose("unique-id", f"{name} 0x{record.unique_id:x}")
            changes["unique_id"] = None
        in_data = record.in_data
        if len(in_data) > PENDING_INPUT_MAX:
            lose("pending-input", f"{len(in_data)} bytes on {name}")
            in_data = b""
        out_data = record.out_data
        resp_len = record.out_resp_len
        if self._swap:
            swapped_in = swap_wire_messages(in_data, self.source.big_endian)
            if swapped_in.dropped:
                lose("partial-header", f"{swapped_in.dropped} input bytes on {name}")
            in_data = swapped_in.data
            if resp_len:
                lose("reply-remainder", f"{resp_len} bytes on {name}")
            swapped_out = swap_wire_messages(out_data[resp_len:], self.source.big_endian)
            if swapped_out.dropped:
                lose("partial-header", f"{swapped_out.dropped} output bytes on {name}")
            out_data = swapped_out.data
            resp_len = 0
        if in_data is not record.in_data:
            changes["in_data"] = in_data
        if out_data is not record.out_data:
            changes["out_data"] = out_data
            changes["out_resp_len"] = resp_len
        return replace(record, **changes) if changes else record  # type: ignore[arg-type]
