"""The control protocol, without I/O: one JSON object per line each way (docs/service.md).

Request:  ``{"id": 7, "command": "snapshot", "output": "/srv/a.img", "force": false}``
Response: ``{"id": 7, "ok": true, "result": {...}}`` or ``{"id": 7, "ok": false, "error": "..."}``

``id`` is optional and echoed back unchanged. Unknown commands, unknown or mistyped arguments,
non-JSON and over-long lines are answered with ``ok: false``; nothing a client sends can do
more than fail its own request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..image.profiles import PROFILES
from .config import WrongTypeError

#: Longest request line accepted (requests are a few hundred bytes).
MAX_LINE = 64 * 1024
#: Longest live-update timeout a request may ask for (seconds).
LU_TIMEOUT_MAX = 3600
#: Longest request deadline (seconds): one day.
DEADLINE_MAX = 86400


class RequestError(ValueError):
    """The request cannot be run; the message goes back to the client."""

    def __init__(self, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: Any = None
    #: Seconds the whole request (waiting for its turn included) may take; None = default.
    deadline: float | None = None


def _optional_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise WrongTypeError(f"{key}: expected true or false")
    return value


def _output(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise ValueError(f"{key}: expected an absolute path")
    return value


def _target(value: Any, key: str) -> str:
    if value not in PROFILES:
        raise ValueError(f"{key}: expected one of {', '.join(PROFILES)}")
    return str(value)


def _lu_timeout(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LU_TIMEOUT_MAX:
        raise ValueError(f"{key}: expected an integer number of seconds, 1 to {LU_TIMEOUT_MAX}")
    return value


#: command -> argument -> checker.
COMMANDS: dict[str, dict[str, Any]] = {
    "status": {},
    "reload": {},
    "snapshot": {"output": _output, "force": _optional_bool, "target": _target},
    "live-update": {"force": _optional_bool, "timeout": _lu_timeout},
}

_ENVELOPE = ("id", "command", "deadline")


def parse_request(line: bytes) -> Request:
    try:
        document = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"request is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError("request must be a JSON object")
    request_id = document.get("id")
    command = document.get("command")
    if not isinstance(command, str) or command not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise RequestError(f"command: expected one of {known}; got {command!r}", request_id)
    checkers = COMMANDS[command]
    args: dict[str, Any] = {}
    for key, value in document.items():
        if key in _ENVELOPE:
            continue
        if key not in checkers:
            raise RequestError(f"{key}: unknown argument for {command}", request_id)
        try:
            args[key] = checkers[key](value, key)
        except ValueError as exc:
            raise RequestError(str(exc), request_id) from None
    deadline = document.get("deadline")
    if deadline is not None and (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not math.isfinite(deadline)
        or not 0 < deadline <= DEADLINE_MAX
    ):
        raise RequestError(
            f"deadline: expected seconds, more than 0 and at most {DEADLINE_MAX}", request_id
        )
    return Request(command, args, request_id, None if deadline is None else float(deadline))


def encode_response(
    request_id: Any, result: dict[str, Any] | None = None, error: str | None = None
) -> bytes:
    document: dict[str, Any] = {"id": request_id, "ok": error is None}
    if error is None:
        document["result"] = result if result is not None else {}
    else:
        document["error"] = error
    return json.dumps(document, sort_keys=True).encode() + b"\n"


def encode_request(command: str, request_id: Any = None, **args: Any) -> bytes:
    document = {
        "id": request_id,
        "command": command,
        **{k: v for k, v in args.items() if v is not None},
    }
    return json.dumps(document).encode() + b"\n"


class LineTooLongError(ValueError):
    pass


class LineBuffer:
    """Splits received bytes into lines; refuses a line longer than ``limit``."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._data = bytearray()

    @property
    def partial(self) -> bool:
        return bool(self._data)

    def feed(self, data: bytes) -> None:
        self._data += data

    def lines(self) -> Iterator[bytes]:
        while (cut := self._data.find(b"\n")) >= 0:
            line = bytes(self._data[:cut])
            del self._data[: cut + 1]
            if len(line) > self.limit:
                raise LineTooLongError(f"request longer than {self.limit} bytes")
            if line.strip():
                yield line
        if len(self._data) > self.limit:
            raise LineTooLongError(f"request longer than {self.limit} bytes")
