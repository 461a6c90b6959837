"""The names a ``--target`` option takes, and its help text, without the profiles.

Kept apart from ``profiles`` so that building a command line parser (``xsmig verify
--help``) imports no record model; ``tests/image/test_targets.py`` keeps the names equal to
``profiles.PROFILES``.
"""

from __future__ import annotations

#: Every loader profile, in --help order (``profiles.PROFILES``).
TARGETS = ("spec", "xen-4.17", "xen-4.20", "xen-4.21", "xen-4.22")
#: The real daemons a --target can name that CI proves.
REAL_TARGETS = ("xen-4.17", "xen-4.20")


def target_help() -> str:
    """What --target means, for every command that takes one."""
    real = " or ".join(REAL_TARGETS)
    return (
        f"loader the image is for: spec (the full-fidelity design-document image) or a real "
        f"xenstored successor, {real} (what that version's `xenstored -U` loads; proven "
        f"against it); xen-4.22 was checked against a real 4.22.0 outside CI "
        f"(docs/upstream.md); xen-4.21 is from its source only, unproven"
    )
