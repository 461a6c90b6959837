"""Request-level behaviour per real xenstored version: one table the handlers read.

Keyed by the same names as image/profiles.py. ``spec`` is the protocol of
shared/spec/wire-protocol.md (current Xen: features, quotas over the wire, DOMID_ANY,
WATCHDEPTH); ``xen-4.17`` and ``xen-4.20`` are what Debian's 4.17.7 and 4.20.4 daemons answer,
learnt from those daemons (tests/differential/compat_sweep.py) and their sources. Where the
real daemon crashes or answers at random, the table follows the next version instead
(docs/mockd.md, "--compat").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.ops import Op

#: Operations every version has (RESTRICT, 20, was removed before 4.17).
_BASE_OPS = frozenset(op for op in Op if op <= Op.DIRECTORY_PART and op != Op.RESTRICT) - {
    Op.WATCH_EVENT,
    Op.ERROR,
}
_CURRENT_OPS = _BASE_OPS | {Op.GET_FEATURE, Op.SET_FEATURE, Op.GET_QUOTA, Op.SET_QUOTA}


@dataclass(frozen=True, slots=True)
class Compat:
    name: str
    #: Operations answered; anything else is ENOSYS.
    ops: frozenset[int]
    #: WATCH takes a third (depth) argument.
    watch_depth: bool
    #: An introduced domain has feature bits and its connection a unique-id (current Xen;
    #: 4.17 and 4.20 have neither, so their dumps and the mock's images hold none).
    domain_features: bool
    #: ``DOMID_ANY`` exists: ``@releaseDomain`` is readable by everyone, SET_PERMS knows it.
    domid_any: bool
    #: GET_PERMS answers for ``@introduceDomain`` / ``@releaseDomain`` (4.17: EINVAL).
    special_get_perms: bool
    #: A quota is exceeded when the new count reaches it (current) or passes it (4.17).
    quota_at_limit: bool
    #: The name of the per-SET_PERMS entry quota in CONTROL quota.
    permissions_quota_name: str
    #: The errno of a WATCH over the watch quota.
    watch_quota_error: str
    #: Dumps write ``@releaseDomain`` / ``@introduceDomain`` before the tree (4.17) or after.
    special_nodes_first: bool
    #: Special nodes are nodes (4.20): an unknown ``@name`` is a missing node below ``/``
    #: for GET_PERMS / SET_PERMS, and SET_PERMS on one fires its watches.
    special_nodes_are_nodes: bool
    #: Domain-op arguments are read with C's atoi (4.17, 4.20), not checked as decimal.
    domid_atoi: bool
    #: path-max applies to privileged callers too (4.17).
    path_max_for_everyone: bool
    #: A path as long as path-max is still valid (C's ``>``); current Xen refuses it.
    path_max_inclusive: bool
    #: XENSTORE_ABS_PATH_MAX enforced on the canonical path (0: no such check).
    abs_path_max: int
    #: An event identical to one still queued for the connection is dropped (not 4.17).
    dedup_events: bool
    #: A domain's node count going negative at commit fails it with ENOMEM (4.20; 4.17
    #: counts it as 0 and lets the conflict check answer).
    negative_count_fails: bool
    #: What node-size charges besides value and child names: C's record header and the
    #: size of one permission entry (4.17: 24 and 8, 4.20: 16 and 8).
    node_header_size: int
    perm_entry_size: int
    #: A node exactly node-size bytes big is refused (4.17's ``>=``; 4.20 ``>``).
    node_size_at_limit: bool
    #: SET_TARGET X T holds a reference on T: RELEASE T drops the newest one and answers
    #: OK with T still introduced (C's talloc_reference; 4.17, 4.20).
    release_drops_reference: bool
    #: RELEASE deletes the domain's watches even when it only drops a reference (4.20).
    release_deletes_watches_first: bool

    def has_op(self, op: int) -> bool:
        return op in self.ops


SPEC = Compat(
    name="spec",
    ops=_CURRENT_OPS,
    watch_depth=True,
    domain_features=True,
    domid_any=True,
    special_get_perms=True,
    quota_at_limit=True,
    permissions_quota_name="node-permissions",
    watch_quota_error="ENOSPC",
    special_nodes_first=False,
    special_nodes_are_nodes=False,
    domid_atoi=False,
    path_max_for_everyone=False,
    path_max_inclusive=False,
    abs_path_max=3072,
    dedup_events=True,
    negative_count_fails=True,
    node_header_size=16,
    perm_entry_size=4,
    node_size_at_limit=True,
    release_drops_reference=False,
    release_deletes_watches_first=False,
)

XEN_4_20 = Compat(
    name="xen-4.20",
    ops=_BASE_OPS,
    watch_depth=False,
    domain_features=False,
    domid_any=False,
    special_get_perms=True,
    quota_at_limit=True,
    permissions_quota_name="node-permissions",
    watch_quota_error="ENOSPC",
    special_nodes_first=False,
    special_nodes_are_nodes=True,
    domid_atoi=True,
    path_max_for_everyone=False,
    path_max_inclusive=True,
    abs_path_max=0,
    dedup_events=True,
    negative_count_fails=True,
    node_header_size=16,
    perm_entry_size=8,
    node_size_at_limit=False,
    release_drops_reference=True,
    release_deletes_watches_first=True,
)

XEN_4_17 = Compat(
    name="xen-4.17",
    ops=_BASE_OPS,
    watch_depth=False,
    domain_features=False,
    domid_any=False,
    special_get_perms=False,
    quota_at_limit=False,
    permissions_quota_name="permissions",
    watch_quota_error="E2BIG",
    special_nodes_first=True,
    special_nodes_are_nodes=False,
    domid_atoi=True,
    path_max_for_everyone=True,
    path_max_inclusive=True,
    abs_path_max=0,
    dedup_events=False,
    negative_count_fails=False,
    node_header_size=24,
    perm_entry_size=8,
    node_size_at_limit=True,
    release_drops_reference=True,
    release_deletes_watches_first=False,
)

COMPATS: dict[str, Compat] = {c.name: c for c in (XEN_4_20, XEN_4_17, SPEC)}
DEFAULT_COMPAT = XEN_4_20.name


def get_compat(name: str) -> Compat:
    try:
        return COMPATS[name]
    except KeyError:
        raise ValueError(f"unknown compat {name!r} (known: {', '.join(COMPATS)})") from None
