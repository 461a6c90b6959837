"""``image/targets.py`` names the profiles for the command line parsers without importing
them; it must name exactly the profiles there are."""

from __future__ import annotations

from xsmig_daemon.image.profiles import PROFILES
from xsmig_daemon.image.targets import REAL_TARGETS, TARGETS, target_help


def test_the_target_names_are_the_profiles() -> None:
    assert tuple(PROFILES) == TARGETS


def test_the_real_targets_are_the_proven_c_loaders() -> None:
    proven = tuple(p.name for p in PROFILES.values() if p.is_c_loader and p.proven)
    assert proven == REAL_TARGETS
    assert all(name in target_help() for name in TARGETS)
