"""Quota names, defaults and descriptions of C xenstored, as GLOBAL_QUOTA_DATA and
DOMAIN_DATA name them (Xen 4.17 and 4.20 start with the same defaults, set by the command
line; current Xen as well)."""

from __future__ import annotations

from dataclasses import dataclass

NODES = "nodes"
WATCHES = "watches"
OUTSTANDING = "outstanding"
MEMORY = "memory"
SOFT_MEMORY = "soft-memory"
TRANSACTIONS = "transactions"
TRANSACTION_NODES = "transaction-nodes"
NODE_PERMISSIONS = "node-permissions"
PATH_MAX = "path-max"
NODE_SIZE = "node-size"
SOFT_PREFIX = "soft-"
UINT_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    name: str
    default: int
    description: str


#: In the order C HEAD writes GLOBAL_QUOTA_DATA.
QUOTA_SPECS: tuple[QuotaSpec, ...] = (
    QuotaSpec(NODES, 1000, "Nodes per domain"),
    QuotaSpec(WATCHES, 128, "Watches per domain"),
    QuotaSpec(OUTSTANDING, 20, "Outstanding requests per domain"),
    QuotaSpec(MEMORY, 2621440, "Total Xenstore memory per domain (error level)"),
    QuotaSpec(SOFT_MEMORY, 2097152, "Total Xenstore memory per domain (warning level)"),
    QuotaSpec(TRANSACTIONS, 10, "Active transactions per domain"),
    QuotaSpec(TRANSACTION_NODES, 1024, "Max. number of accessed nodes per transaction"),
    QuotaSpec(NODE_PERMISSIONS, 5, "Max. number of permissions per node"),
    QuotaSpec(PATH_MAX, 2048, "Max. length of a node path"),
    QuotaSpec(NODE_SIZE, 2048, "Max. size of a node"),
)
QUOTA_NAMES: tuple[str, ...] = tuple(spec.name for spec in QUOTA_SPECS)
HARD_QUOTAS: tuple[QuotaSpec, ...] = tuple(
    spec for spec in QUOTA_SPECS if not spec.name.startswith(SOFT_PREFIX)
)
SOFT_QUOTAS: tuple[QuotaSpec, ...] = tuple(
    spec for spec in QUOTA_SPECS if spec.name.startswith(SOFT_PREFIX)
)


def default_quotas() -> dict[str, int]:
    return {spec.name: spec.default for spec in QUOTA_SPECS}
