"""Loader profiles: what a given consumer of the stream accepts, and what it writes.

``spec`` is the design document; ``xen-4.17`` is Debian bookworm's C xenstored and
``xen-4.20`` Debian trixie's, both proven against the real daemon in CI (``proven``; their
fd layouts and special-node order are what their own dumps hold); ``xen-4.21`` is C
xenstored 4.21, read from its source only (no real 4.21 loader proved it); ``xen-4.22`` is
C xenstored 4.22.0 (read from its source and checked against the real daemon:
tests/data/xen-4.22/, docs/upstream.md). The rules are those of
``shared/spec/image-format.md`` sections 6 and 9.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..wire.features import FEATURE_DOMID_ANY, FEATURE_ERROR, FEATURE_WATCHDEPTH
from . import watchext
from .records import Header, RecordType

_ALL_TYPES = frozenset(RecordType)


@dataclass(frozen=True, slots=True)
class DumpQuirks:
    """What a C daemon writes into its own live-update dump."""

    #: stream version by default (``live-update -v N`` picks another)
    default_version: int
    #: version-1 dumps (``-v 1``) still hold types 6-8 and connection unique-ids
    v1_holds_v2_records: bool = False
    #: layout of its WATCH_DATA_EXTENDED records (``watchext``)
    watch_ext_layout: str = watchext.DOC
    #: GLOBAL_QUOTA_DATA / DOMAIN_DATA padding may hold heap bytes
    dirty_quota_padding: bool = False
    #: it writes DOMAIN_DATA for domains its own loader does not know (only named in a
    #: node's permissions, or given features or quotas before being introduced)
    dumps_unknown_domains: bool = False


@dataclass(frozen=True, slots=True)
class FdLayout:
    """The fd numbers a real daemon's own dump names: its listening socket, its event
    channel handle, and the first socket client (the next ones count up in accept order).
    Process artefacts, not format: they differ between versions (4.20 has no tdb file open)
    and a loader only needs *some* open fd at each number GLOBAL_DATA names."""

    socket_fd: int
    evtchn_fd: int
    first_conn_fd: int


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    versions: frozenset[int]
    #: C refuses a stream whose flag differs from its native (x86: little) order.
    little_endian_only: bool
    #: C needs GLOBAL_DATA first and dom0's ring CONNECTION_DATA before any NODE_DATA.
    is_c_loader: bool
    #: Record types the loader understands; others it skips (losing their content).
    record_types: frozenset[int]
    #: The daemon's own dumps put ``@releaseDomain`` and ``@introduceDomain`` before the tree
    #: (C 4.17); later ones put them after it (spec 9.1). Producers follow the daemon's order.
    specials_first: bool = False
    #: WATCH_DATA_EXTENDED layout the loader parses, and the one xsmig writes for it.
    watch_ext_layout: str = watchext.DOC
    #: The loader reads GLOBAL_QUOTA_DATA, DOMAIN_DATA and WATCH_DATA_EXTENDED in version-1
    #: streams too (4.22 does: it dispatches on the type, not on the stream version).
    loads_v2_records_in_v1: bool = False
    #: dom0's ring CONNECTION_DATA must precede every WATCH record too (4.22: SIGSEGV).
    dom0_ring_before_watches: bool = False
    #: GLOBAL_DATA's socket fd must be a listening socket (4.22 restores with -1, but then
    #: nobody can connect).
    needs_listening_socket: bool = False
    #: Features dom0's DOMAIN_DATA must carry in a version-2 stream: the loader applies the
    #: record's features as given, so 0 would take them from dom0 (0 = no rule).
    dom0_features: int = 0
    #: What the daemon itself writes in its live-update dump (None: not characterised).
    dump: DumpQuirks | None = None
    #: A real daemon of this version loads xsmig's images in the CI tests.
    proven: bool = False
    #: The fd numbers its own dumps hold (started as Debian does); None: not a real daemon.
    fds: FdLayout | None = None

    @property
    def keeps_transactions(self) -> bool:
        return RecordType.TRANSACTION_DATA in self.record_types

    @property
    def newest_header(self) -> Header:
        """The newest stream this loader reads, little endian (x86's order, which C needs)."""
        return Header(max(self.versions), big_endian=False)


SPEC = Profile(
    name="spec",
    description="the xenstore migration design document (any version, either byte order)",
    versions=frozenset({1, 2}),
    little_endian_only=False,
    is_c_loader=False,
    record_types=_ALL_TYPES,
)

XEN_4_17 = Profile(
    name="xen-4.17",
    description="C xenstored 4.17 (Debian bookworm): v1 little endian, types 0-5",
    versions=frozenset({1}),
    little_endian_only=True,
    is_c_loader=True,
    record_types=frozenset(
        {
            RecordType.END,
            RecordType.GLOBAL_DATA,
            RecordType.CONNECTION_DATA,
            RecordType.WATCH_DATA,
            RecordType.NODE_DATA,
        }
    ),
    specials_first=True,
    proven=True,
    fds=FdLayout(socket_fd=4, evtchn_fd=7, first_conn_fd=8),
)

XEN_4_20 = Profile(
    name="xen-4.20",
    description="C xenstored 4.20 (Debian trixie): v1 little endian, types 0-5; writes the "
    "special nodes after the tree, GLOBAL fds socket 3 / evtchn 6, clients from fd 7",
    versions=frozenset({1}),
    little_endian_only=True,
    is_c_loader=True,
    record_types=XEN_4_17.record_types,
    specials_first=False,
    proven=True,
    fds=FdLayout(socket_fd=3, evtchn_fd=6, first_conn_fd=7),
)

XEN_4_21 = Profile(
    name="xen-4.21",
    description="C xenstored 4.21: v1 or v2 little endian, types 0-5 and DOMAIN_DATA",
    versions=frozenset({1, 2}),
    little_endian_only=True,
    is_c_loader=True,
    # No GLOBAL_QUOTA_DATA: lu_read_state of RELEASE-4.21.0, .1 and .2 has no case for type
    # 6 (it skips it, so global quotas fall back to the command line's); 4.22 added it.
    record_types=XEN_4_17.record_types | {RecordType.DOMAIN_DATA},
    specials_first=False,
    fds=FdLayout(socket_fd=3, evtchn_fd=6, first_conn_fd=7),
)

XEN_4_22 = Profile(
    name="xen-4.22",
    description=(
        "C xenstored 4.22.0: v1 or v2 little endian, types 0-8; WATCH_DATA_EXTENDED as its "
        "loader parses it (depth at 8, wpath at 10)"
    ),
    versions=frozenset({1, 2}),
    little_endian_only=True,
    is_c_loader=True,
    record_types=frozenset(RecordType) - {RecordType.TRANSACTION_DATA},
    watch_ext_layout=watchext.XEN_422,
    loads_v2_records_in_v1=True,
    dom0_ring_before_watches=True,
    needs_listening_socket=True,
    dom0_features=FEATURE_ERROR | FEATURE_WATCHDEPTH | FEATURE_DOMID_ANY,
    fds=FdLayout(socket_fd=3, evtchn_fd=6, first_conn_fd=7),
    dump=DumpQuirks(
        default_version=2,
        v1_holds_v2_records=True,
        watch_ext_layout=watchext.XEN_422_WRITER,
        dirty_quota_padding=True,
        dumps_unknown_domains=True,
    ),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SPEC, XEN_4_17, XEN_4_20, XEN_4_21, XEN_4_22)}

#: For reading a dump that a daemon wrote before converting it: the format's rules, plus the
#: version-1 streams with types 6-8 that 4.22 writes (not a target: not in PROFILES).
DUMP_SOURCE = replace(
    SPEC,
    name="dump-source",
    description="a daemon's live-update dump, read for conversion",
    loads_v2_records_in_v1=True,
)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown target profile {name!r} (known: {known})") from None


def as_profile(profile: str | Profile) -> Profile:
    """A profile given by name or as itself."""
    return profile if isinstance(profile, Profile) else get_profile(profile)


def default_version(profile: Profile, input_version: int | None = None) -> int:
    """The stream version written when none is asked for: an input image's own if the
    target loads it, else the highest the target loads (spec: 2, full fidelity; the real
    4.17 and 4.20 daemons: 1)."""
    if input_version is not None and input_version in profile.versions:
        return input_version
    return max(profile.versions)


def writer_of(socket_fd: int, evtchn_fd: int, specials_first: bool) -> Profile | None:
    """The real daemon whose own dumps look like this (GLOBAL_DATA fds and where the special
    nodes are), if exactly one proven one does. fd numbers alone prove nothing: they depend
    on how the daemon was started (a 4.17 started without a log has 4.20's numbers)."""
    fds = (socket_fd, evtchn_fd)
    matches = [
        p
        for p in PROFILES.values()
        if p.proven
        and p.fds is not None
        and (p.fds.socket_fd, p.fds.evtchn_fd) == fds
        and p.specials_first == specials_first
    ]
    return matches[0] if len(matches) == 1 else None
