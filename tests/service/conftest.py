"""Fixtures of the service tests: short run directories and configurations inside them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xsmig_daemon.service.config import Config, build_config


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh directory under /tmp with a short name (unix socket paths < 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="xs", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_config(base: Path, **sections: dict[str, Any]) -> Config:
    """A configuration whose sockets and directories all live under ``base``."""
    document: dict[str, dict[str, Any]] = {
        "xenstored": {"socket": str(base / "xs.sock")},
        "snapshots": {"directory": str(base / "snaps"), "interval": 0, "timeout": 30},
        "control": {"socket": str(base / "ctl.sock")},
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    return build_config(document)


def write_config(path: Path, base: Path, **sections: dict[str, Any]) -> Path:
    """Write the TOML form of ``make_config(base, **sections)`` to ``path``."""
    make_config(base, **sections)  # validate first: a test must not start on a bad file
    document: dict[str, dict[str, Any]] = {
        "xenstored": {"socket": str(base / "xs.sock")},
        "snapshots": {"directory": str(base / "snaps"), "interval": 0, "timeout": 30},
        "control": {"socket": str(base / "ctl.sock")},
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, table in document.items():
        lines.append(f"[{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
