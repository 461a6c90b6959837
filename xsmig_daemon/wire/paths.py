"""Xenstore path syntax: validation, relative resolution and tree relations.

Paths are ``str`` here; the only characters xenstore accepts are ASCII, so a payload that
does not decode as ASCII is an invalid path. Special paths (``@introduceDomain`` ...) are
outside the tree and are accepted only where the caller says so.
"""

from __future__ import annotations

import re

ABS_PATH_MAX = 3072
REL_PATH_MAX = 2048
INTRODUCE_DOMAIN = "@introduceDomain"
RELEASE_DOMAIN = "@releaseDomain"
SPECIAL_PATHS = (INTRODUCE_DOMAIN, RELEASE_DOMAIN)

_VALID_CHARS = re.compile(r"[A-Za-z0-9\-/_@]*")
_DOMAIN_HOME = re.compile(r"/local/domain/(\d{1,5})/")


class InvalidPathError(ValueError):
    """A path the daemon refuses (C answers EINVAL)."""


def domain_home(domid: int) -> str:
    return f"/local/domain/{domid}"


def decode_path(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidPathError(f"path {raw!r} is not ASCII") from None


def is_relative(path: str) -> bool:
    return not path.startswith(("/", "@"))


def canonicalize(path: str, home: str) -> str:
    """Absolute form of ``path``: relative paths are resolved under ``home``."""
    if not path or not is_relative(path):
        return path
    return f"{home}/{path}"


def length_for_quota(path: str) -> int:
    """The part of ``path`` that the ``path-max`` quota limits (after a domain home)."""
    match = _DOMAIN_HOME.match(path)
    return len(path) - (match.end() if match else 0)


def validate(
    path: str,
    *,
    allow_special: bool,
    path_max: int = 0,
    path_max_inclusive: bool = False,
    abs_max: int = ABS_PATH_MAX,
) -> None:
    """Raise InvalidPathError unless ``path`` (canonical) is acceptable.

    ``path_max`` > 0 applies the ``path-max`` quota: current Xen refuses a length that
    reaches it, C 4.17 / 4.20 one that passes it (``path_max_inclusive``). ``abs_max`` > 0
    limits the whole path (XENSTORE_ABS_PATH_MAX; 4.17 and 4.20 do not check it).
    """
    if not path:
        raise InvalidPathError("empty path")
    if path.startswith("@"):
        if not allow_special:
            raise InvalidPathError(f"special path {path!r} not allowed here")
    elif not path.startswith("/"):
        raise InvalidPathError(f"path {path!r} is not absolute")
    if path.endswith("/") and path != "/":
        raise InvalidPathError(f"path {path!r} ends in '/'")
    if "//" in path:
        raise InvalidPathError(f"path {path!r} contains '//'")
    if _VALID_CHARS.fullmatch(path) is None:
        raise InvalidPathError(f"path {path!r} contains an invalid character")
    if abs_max and len(path) > abs_max:
        raise InvalidPathError(f"path of {len(path)} characters exceeds {abs_max}")
    if path_max and length_for_quota(path) >= path_max + int(path_max_inclusive):
        raise InvalidPathError(f"path {path[:40]!r}... longer than path-max {path_max}")


def parent(path: str) -> str:
    cut = path.rfind("/")
    return "/" if cut <= 0 else path[:cut]


def basename(path: str) -> str:
    return path[path.rfind("/") + 1 :]


def join(parent_path: str, name: str) -> str:
    return f"/{name}" if parent_path == "/" else f"{parent_path}/{name}"


def levels_below(path: str, ancestor: str) -> int | None:
    """How many components ``path`` lies below ``ancestor`` (0 = same); None if not below."""
    if path == ancestor:
        return 0
    if ancestor == "/":
        return path.count("/") if path.startswith("/") else None
    if path.startswith(ancestor) and path[len(ancestor)] == "/":
        return path.count("/", len(ancestor))
    return None
