"""The service configuration: a TOML file, validated completely before anything starts.

Every option has a default, so an empty file is a valid configuration. Loading rejects unknown
sections and keys, wrong types and bad values with ``ConfigError("section.key: reason")``. The
option table ``OPTIONS`` is the single description of the file: ``config.example.toml`` and
docs/service.md list the same options (a test checks the example covers every one).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..argtypes import MAX_SOCKET_PATH
from ..defaults import FREEZE_DEADLINE, FREEZE_DEADLINE_MAX, FREEZE_DEADLINE_MIN
from ..image.profiles import PROFILES
from ..wire.introspect import FREEZE_MODES

LOG_LEVELS = ("debug", "info", "warning", "error")
SOURCES = ("auto", "introspect", "wire")
ON_INVALID_POLICIES = ("fresh", "restore")


class ConfigError(ValueError):
    """One line: ``section.key: reason`` (or ``FILE: reason`` for the file itself)."""


class WrongTypeError(ValueError):
    """A value of the wrong TOML/JSON type (reported like any other bad value)."""


@dataclass(frozen=True, slots=True)
class XenstoredOptions:
    socket: str
    source: str
    connect_timeout: float
    request_timeout: float
    freeze_deadline: float
    freeze_mode: str


@dataclass(frozen=True, slots=True)
class SnapshotOptions:
    directory: str
    target: str
    interval: float
    keep_count: int
    keep_age: float
    timeout: float


@dataclass(frozen=True, slots=True)
class ControlOptions:
    socket: str
    read_timeout: float
    max_clients: int


@dataclass(frozen=True, slots=True)
class LogOptions:
    level: str


@dataclass(frozen=True, slots=True)
class LuHookOptions:
    successor: str
    profile: str
    convert: bool
    keep_copy: bool
    on_invalid: str
    wrapper: str
    timeout: int
    force: bool


@dataclass(frozen=True, slots=True)
class Config:
    xenstored: XenstoredOptions
    snapshots: SnapshotOptions
    control: ControlOptions
    log: LogOptions
    lu_hook: LuHookOptions
    #: Where it was loaded from (None for the built-in defaults).
    path: str | None = None


# ----------------------------------------------------------------------------- value checks

Check = Callable[[Any], Any]


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return names.get(type(value), "table" if isinstance(value, dict) else type(value).__name__)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise WrongTypeError(f"expected a string, got {_type_name(value)}")
    if "\0" in value:
        raise ValueError("must not contain NUL")
    return value


def absolute_path(value: Any) -> str:
    text = _string(value)
    if not text.startswith("/"):
        raise ValueError(f"must be an absolute path, got {text!r}")
    return os.path.normpath(text)


def socket_path(value: Any) -> str:
    text = absolute_path(value)
    if len(text.encode()) > MAX_SOCKET_PATH:
        raise ValueError(f"unix socket path longer than {MAX_SOCKET_PATH} bytes")
    return text


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        text = _string(value)
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {text!r}")
        return text

    return check


def seconds(minimum: float, *, allow_zero: bool = False, maximum: float = 86400 * 366) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WrongTypeError(f"expected a number of seconds, got {_type_name(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("must be a finite number of seconds")
        if allow_zero and number == 0:
            return 0.0
        if not minimum <= number <= maximum:
            zero = "0 or " if allow_zero else ""
            raise ValueError(f"must be {zero}between {minimum:g} and {maximum:g} s, got {value}")
        return number

    return check


def integer(minimum: int, maximum: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WrongTypeError(f"expected an integer, got {_type_name(value)}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, got {value}")
        return value

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise WrongTypeError(f"expected true or false, got {_type_name(value)}")
    return value


@dataclass(frozen=True, slots=True)
class Option:
    default: Any
    check: Check
    help: str


PROFILE_NAMES = tuple(PROFILES)

#: section -> key -> option. The order is the order of config.example.toml.
OPTIONS: dict[str, dict[str, Option]] = {
    "xenstored": {
        "socket": Option(
            "/run/xenstored/socket", socket_path, "unix socket of the xenstored to snapshot"
        ),
        "source": Option(
            "auto",
            one_of(SOURCES),
            "how state is read: auto, introspect (xsmig mock only) or wire (any xenstored)",
        ),
        "connect_timeout": Option(5.0, seconds(0.1, maximum=600), "seconds to connect"),
        "request_timeout": Option(
            10.0, seconds(0.1, maximum=3600), "seconds to wait for any one reply"
        ),
        "freeze_deadline": Option(
            FREEZE_DEADLINE,
            seconds(FREEZE_DEADLINE_MIN, maximum=FREEZE_DEADLINE_MAX),
            "introspect: seconds after which the daemon unfreezes by itself",
        ),
        "freeze_mode": Option(
            FREEZE_MODES[0],
            one_of(FREEZE_MODES),
            "introspect: snapshot (the daemon copies all but its tree and serves on while the "
            "tree is read copy-on-write), capture (it copies its state and runs on) or stream "
            "(frozen until everything is read)",
        ),
    },
    "snapshots": {
        "directory": Option(
            "/var/lib/xsmig/snapshots", absolute_path, "where snapshots and lu-hook copies go"
        ),
        "target": Option("spec", one_of(PROFILE_NAMES), "profile snapshots are written for"),
        "interval": Option(
            3600.0,
            seconds(10, allow_zero=True),
            "seconds between scheduled snapshots; 0 disables the schedule",
        ),
        "keep_count": Option(24, integer(1, 100000), "scheduled snapshots kept (newest first)"),
        "keep_age": Option(
            7 * 86400.0,
            seconds(1, allow_zero=True),
            "scheduled snapshots older than this many seconds are pruned; 0 = no age limit",
        ),
        "timeout": Option(
            300.0, seconds(1, maximum=86400), "seconds one snapshot may take before it fails"
        ),
    },
    "control": {
        "socket": Option("/run/xsmig/control.sock", socket_path, "control socket (mode 0600)"),
        "read_timeout": Option(
            10.0, seconds(0.1, maximum=3600), "seconds a client has to send a whole request"
        ),
        "max_clients": Option(16, integer(1, 1024), "control connections served at once"),
    },
    "log": {
        "level": Option("info", one_of(LOG_LEVELS), "lowest level logged: " + "|".join(LOG_LEVELS)),
    },
    "lu_hook": {
        "successor": Option(
            "/usr/sbin/xenstored", absolute_path, "the xenstored binary lu-hook execs"
        ),
        "profile": Option(
            "xen-4.17", one_of(PROFILE_NAMES), "loader profile the dump is checked against"
        ),
        "convert": Option(
            True, boolean, "convert a dump the successor would refuse into its profile"
        ),
        "keep_copy": Option(True, boolean, "keep a copy + manifest in snapshots.directory"),
        "on_invalid": Option(
            "fresh",
            one_of(ON_INVALID_POLICIES),
            "dump unusable: fresh (start the successor without -U) or restore (-U anyway)",
        ),
        "wrapper": Option(
            "/usr/libexec/xsmig/lu-hook",
            absolute_path,
            "executable xenstore-control is given (xsmig lu-hook --install-wrapper)",
        ),
        "timeout": Option(60, integer(1, 3600), "xenstore-control -t: seconds to quiesce"),
        "force": Option(False, boolean, "xenstore-control -F: drop open transactions on timeout"),
    },
}

_SECTION_TYPES: dict[str, Callable[..., Any]] = {
    "xenstored": XenstoredOptions,
    "snapshots": SnapshotOptions,
    "control": ControlOptions,
    "log": LogOptions,
    "lu_hook": LuHookOptions,
}


def build_config(document: Mapping[str, Any], path: str | None = None) -> Config:
    """Validate a parsed TOML document; raises ConfigError naming the first bad key."""
    for section, table in document.items():
        if section not in OPTIONS:
            raise ConfigError(f"{section}: unknown section (known: {', '.join(OPTIONS)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table, got {_type_name(table)}")
        for key in table:
            if key not in OPTIONS[section]:
                known = ", ".join(OPTIONS[section])
                raise ConfigError(f"{section}.{key}: unknown key (known: {known})")
    sections: dict[str, Any] = {}
    for section, options in OPTIONS.items():
        table = document.get(section, {})
        values: dict[str, Any] = {}
        for key, option in options.items():
            raw = table.get(key, option.default)
            try:
                values[key] = option.check(raw)
            except ValueError as exc:
                raise ConfigError(f"{section}.{key}: {exc}") from None
        sections[section] = _SECTION_TYPES[section](**values)
    config = Config(path=path, **sections)
    _check_combinations(config)
    return config


def _check_combinations(config: Config) -> None:
    snap = config.snapshots
    if snap.interval and snap.timeout >= snap.interval:
        raise ConfigError(
            f"snapshots.timeout: {snap.timeout:g} s must be shorter than snapshots.interval "
            f"({snap.interval:g} s)"
        )
    if config.control.socket == config.xenstored.socket:
        raise ConfigError("control.socket: must differ from xenstored.socket")
    if config.xenstored.freeze_deadline > config.snapshots.timeout:
        raise ConfigError(
            "xenstored.freeze_deadline: must not exceed snapshots.timeout "
            f"({config.snapshots.timeout:g} s)"
        )


def _read_document(path: str | Path) -> dict[str, Any]:
    name = str(path)
    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc.reason}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; ConfigError for unreadable files and TOML syntax too."""
    return build_config(_read_document(path), os.path.abspath(str(path)))


def load_option(path: str | Path, section: str, key: str) -> Any:
    """One validated option of the file at ``path``, ignoring every other section and key.

    For clients such as ``xsmig ctl`` (and the snapshot timer that runs it): a key they do
    not use, unknown to this version or wrong, must not stop them reaching the service.
    """
    option = OPTIONS[section][key]
    table = _read_document(path).get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{section}: expected a table, got {_type_name(table)}")
    try:
        return option.check(table.get(key, option.default))
    except ValueError as exc:
        raise ConfigError(f"{section}.{key}: {exc}") from None


def default_config() -> Config:
    return build_config({})
