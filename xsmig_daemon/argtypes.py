"""argparse ``type=`` functions: every number is range-checked while the command line is
parsed, so a bad value is a usage error (exit 2, one line) before anything starts."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

#: The longest duration any option accepts: one day.
MAX_SECONDS = 86400.0


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


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range {low}..{high}")
        return value

    parse.__name__ = "integer"
    return parse


#: Any positive duration up to a day: timeouts and deadlines.
positive_seconds = seconds_range(0.0, MAX_SECONDS)
