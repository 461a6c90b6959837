"""argparse ``type=`` functions: every number is range-checked while the command line is
parsed, so a bad value is a usage error (exit 2, one line) before anything starts."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

#: The longest duration any option accepts: one day.
MAX_SECONDS = 86400.0
#: sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def seconds_range(
    low: float, high: float, *, low_inclusive: bool = False
) -> Callable[[str], float]:
    """Seconds in (low, high] (or [low, high] with ``low_inclusive``)."""
    opening = "[" if low_inclusive else "("

    def parse(text: str) -> float:
        value = _number(text, float)
        if value < low or (value == low and not low_inclusive) or value > high:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: seconds in {opening}{low:g}, {high:g}]"
            )
        return value

    parse.__name__ = "seconds"
    return parse


def int_range(low: int, high: int, *, name: str | None = None) -> Callable[[str], int]:
    """An integer in [low, high]; ``name`` (e.g. "a guest domain id") words the refusal."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            if name is not None:
                raise argparse.ArgumentTypeError(f"{text} is not {name} ({low}..{high})")
            raise argparse.ArgumentTypeError(f"{text} is out of range {low}..{high}")
        return value

    parse.__name__ = "integer"
    return parse


#: Any positive duration up to a day: timeouts and deadlines.
positive_seconds = seconds_range(0.0, MAX_SECONDS)


def unix_socket_path(text: str) -> str:
    """A path a unix socket can have: not empty, at most ``MAX_SOCKET_PATH`` bytes."""
    size = len(os.fsencode(text))
    if not size:
        raise argparse.ArgumentTypeError("an empty socket path")
    if size > MAX_SOCKET_PATH:
        raise argparse.ArgumentTypeError(
            f"{text}: a unix socket path is at most {MAX_SOCKET_PATH} bytes (this one is {size})"
        )
    return text


unix_socket_path.__name__ = "socket path"
