"""``xsmig ctl`` results for a person (``--json`` prints them as they came)."""

from __future__ import annotations

import time
from typing import Any


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def format_status(result: dict[str, Any]) -> str:
    counters = result.get("counters") or {}
    last = result.get("last_snapshot") or {}
    operation = result.get("operation")
    doing = "idle" if operation is None else str(operation)
    if result.get("progress"):
        doing += f" ({result['progress']})"
    rows = [
        ("service", f"pid {result.get('pid')}, up {result.get('uptime', 0):.0f} s"),
        ("config", str(result.get("config") or "(defaults)")),
        ("xenstored", str(result.get("xenstored"))),
        ("doing", doing),
        (
            "last snapshot",
            f"{last.get('image')} ({_when(last.get('finished'))})" if last else "none",
        ),
        ("last error", str(result.get("last_error") or "none")),
        (
            "next scheduled",
            _when(result.get("next_scheduled")) if result.get("next_scheduled") else "off",
        ),
        (
            "counters",
            ", ".join(
                f"{key.replace('_', ' ')} {value}" for key, value in sorted(counters.items())
            ),
        ),
    ]
    rows += [("lu-hook problem", str(problem)) for problem in result.get("lu_hook_problems", [])]
    return _table(rows)


def format_result(command: str, result: dict[str, Any]) -> str:
    if command == "status":
        return format_status(result)
    rows = [(key.replace("_", " "), _scalar(value)) for key, value in sorted(result.items())]
    return _table(rows)


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_scalar(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _table(rows: list[tuple[str, str]]) -> str:
    width = max((len(name) for name, _ in rows), default=0)
    return "".join(f"{name + ':':<{width + 1}} {value}\n" for name, value in rows)
