"""Quota rules of C xenstored (current Xen); the names and defaults are image/quotas.py's."""

from __future__ import annotations

from ..image.quotas import (
    HARD_QUOTAS,
    MEMORY,
    NODE_PERMISSIONS,
    NODE_SIZE,
    NODES,
    OUTSTANDING,
    PATH_MAX,
    QUOTA_NAMES,
    QUOTA_SPECS,
    SOFT_MEMORY,
    SOFT_PREFIX,
    SOFT_QUOTAS,
    TRANSACTION_NODES,
    TRANSACTIONS,
    UINT_MAX,
    WATCHES,
    QuotaSpec,
    default_quotas,
)

__all__ = [
    "HARD_QUOTAS",
    "MEMORY",
    "NODES",
    "NODE_PERMISSIONS",
    "NODE_SIZE",
    "OUTSTANDING",
    "PATH_MAX",
    "QUOTA_NAMES",
    "QUOTA_SPECS",
    "SOFT_MEMORY",
    "SOFT_PREFIX",
    "SOFT_QUOTAS",
    "TRANSACTIONS",
    "TRANSACTION_NODES",
    "UINT_MAX",
    "WATCHES",
    "QuotaSpec",
    "default_quotas",
    "exceeds",
]


def exceeds(new_value: int, quota: int) -> bool:
    """Current Xen's rule: a quota is exceeded once the new value reaches it (0 = off)."""
    return quota != 0 and new_value >= quota
