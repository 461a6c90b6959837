"""Loader profiles: what a given consumer of the stream accepts.

``spec`` is the design document; ``xen-4.17`` is Debian bookworm's C xenstored; ``xen-4.21``
is C xenstored 4.21. The rules are those of ``shared/spec/image-format.md`` sections 6 and 9.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Header, RecordType

_ALL_TYPES = frozenset(RecordType)


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
)

XEN_4_21 = Profile(
    name="xen-4.21",
    description="C xenstored 4.21: v1 or v2 little endian, types 0-5 and DOMAIN_DATA",
    versions=frozenset({1, 2}),
    little_endian_only=True,
    is_c_loader=True,
    record_types=XEN_4_17.record_types | {RecordType.DOMAIN_DATA},
    specials_first=False,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SPEC, XEN_4_17, XEN_4_21)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown target profile {name!r} (known: {known})") from None


def as_profile(profile: str | Profile) -> Profile:
    """A profile given by name or as itself."""
    return profile if isinstance(profile, Profile) else get_profile(profile)
