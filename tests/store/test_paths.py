"""Path syntax, limits and relative resolution (wire/paths.py)."""

from __future__ import annotations

import pytest

from xsmig_daemon.store.wireargs import c_atoi
from xsmig_daemon.wire import paths


@pytest.mark.parametrize(
    "path",
    ["/", "/a", "/a/b-c_D9", "/local/domain/3/device", "@releaseDomain", "@introduceDomain"],
)
def test_valid_paths(path: str) -> None:
    paths.validate(path, allow_special=True)


@pytest.mark.parametrize(
    "path", ["", "a", "/a/", "//a", "/a//b", "/a b", "/a.b", "/a\x00b", "/ä", "/a:b"]
)
def test_invalid_paths(path: str) -> None:
    with pytest.raises(paths.InvalidPathError):
        paths.validate(path, allow_special=True)


def test_special_paths_need_permission() -> None:
    with pytest.raises(paths.InvalidPathError):
        paths.validate("@releaseDomain", allow_special=False)


def test_path_max_counts_after_the_domain_home() -> None:
    home = "/local/domain/7/"
    paths.validate(home + "x" * 9, allow_special=False, path_max=10)
    with pytest.raises(paths.InvalidPathError):
        paths.validate(home + "x" * 10, allow_special=False, path_max=10)
    with pytest.raises(paths.InvalidPathError):
        paths.validate("/" + "x" * 9, allow_special=False, path_max=10)


def test_absolute_length_limit() -> None:
    # path-max applies to unprivileged domains only; XENSTORE_ABS_PATH_MAX to everyone.
    paths.validate("/" + "a" * 3071, allow_special=False)
    with pytest.raises(paths.InvalidPathError):
        paths.validate("/" + "a" * 3072, allow_special=False)


def test_relative_resolution() -> None:
    assert paths.canonicalize("device/vif", "/local/domain/4") == "/local/domain/4/device/vif"
    assert paths.canonicalize("/abs", "/local/domain/4") == "/abs"
    assert paths.canonicalize("@releaseDomain", "/local/domain/4") == "@releaseDomain"


def test_tree_relations() -> None:
    assert paths.parent("/a/b") == "/a"
    assert paths.parent("/a") == "/"
    assert paths.basename("/a/b") == "b"
    assert paths.join("/", "a") == "/a"
    assert paths.levels_below("/a/b/c", "/a") == 2
    assert paths.levels_below("/a", "/a") == 0
    assert paths.levels_below("/ab", "/a") is None
    assert paths.levels_below("/a/b", "/") == 2


def test_non_ascii_bytes_are_invalid() -> None:
    with pytest.raises(paths.InvalidPathError):
        paths.decode_path(b"/\xff")


def test_c_atoi() -> None:
    assert [c_atoi(raw) for raw in (b"12", b" 7x", b"-3", b"x", b"", b"  ", b"+")] == [
        12,
        7,
        -3,
        0,
        0,
        0,
        0,
    ]
