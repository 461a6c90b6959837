"""What every source of state implements, and what it is asked for.

A source turns some xenstored state into records of the migration stream, in the order the
target loader needs, and hands them one by one to a ``RecordOutput``. It never encodes bytes
or touches the sink itself. Sources in this package: ``wire`` (any xenstored, over its
socket), ``introspect`` (the xsmig mock's introspection protocol), ``image`` (an existing
image file); a new one implements the same ``Source`` protocol (docs/export.md, "Adding a
source").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..image.profiles import Profile
from ..image.records import Header, Record

Mode = Literal["live-update", "domain"]


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What to export and for whom.

    ``mode`` "live-update" is the whole state; "domain" is a migration stream for ``domid``
    only (image-format.md section 7). ``profile`` is the target loader; ``header`` the
    stream's version and byte order. ``dom0_evtchn`` is the local event-channel port written
    into a synthesised dom0 ring CONNECTION_DATA (a wire source cannot see the real one).
    ``socket_fd`` / ``evtchn_fd`` go into GLOBAL_DATA; None lets the loader layout of a
    ``xen-*`` target choose (that version's own numbers where free; -1 for ``spec``).
    """

    mode: Mode
    profile: Profile
    header: Header
    domid: int | None = None
    dom0_evtchn: int = 1
    #: GLOBAL_DATA's fd numbers. The exporter is not the daemon's process, so these are not
    #: the daemon's fds: whoever starts the loader must open them at these numbers.
    socket_fd: int | None = None
    evtchn_fd: int | None = None
    timeout: float = 10.0


class RecordOutput(Protocol):
    """Where a source puts records. ``rewind`` discards everything written so far (the
    source retries after a lost transaction); it raises ``RewindImpossibleError`` when the
    bytes have already left (e.g. a pipe)."""

    async def write(self, record: Record) -> None: ...

    async def rewind(self) -> None: ...


@dataclass(slots=True)
class SourceReport:
    """What a source says about the state it exported; goes into the manifest."""

    kind: str
    location: str
    #: What the image does not hold, or holds only approximately, and why. Never invented.
    fidelity_notes: list[str] = field(default_factory=list)
    #: Seconds the daemon was frozen for a consistent read; None if it never was.
    freeze_duration: float | None = None
    #: Consistent-read attempts (wire: transactions started).
    attempts: int = 1
    #: Wire ``watch`` consistency: repair rounds of the converged walk (0 if none was needed).
    repair_rounds: int = 0
    #: Domains known to be introduced (wire: IS_DOMAIN_INTRODUCED answered T).
    domains: list[int] = field(default_factory=list)
    nodes: int = 0
    #: ``--domain N``: nodes relating to N that the stream leaves to the toolstack.
    left_to_toolstack: list[str] = field(default_factory=list)


class Source(Protocol):
    """A place state comes from. ``export`` writes the whole stream except END."""

    kind: str
    location: str

    async def export(self, plan: ExportPlan, out: RecordOutput) -> SourceReport: ...
