"""Durations in recipes and on the command line.

``"250ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` or a number of seconds.
One parser serves the recipe (timeouts) and the scheduler (every, jitter, --grace).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")
_DURATION = re.compile(rf"(?:(?:{_NUMBER})\s*(?:ms|s|m|h|d)\s*)+")

#: ten years: longer is a typo, and would overflow the clocks and timers it reaches
MAX_SECONDS = 3650 * 86400

HINT = "a number of seconds or a string such as '250ms', '30s', '5m', '2h', '1h30m'"


def parse_duration(value: object) -> float:
    """Seconds (a float >= 0) from a duration string or a number.

    Raises ``ValueError`` with a message meant for the user.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        shown = "a boolean" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise ValueError(f"must be a duration ({HINT}), got {shown}")
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(f"{value!r} is not a duration: use {HINT}") from None
            # in decimal, so that "1900ms" is exactly the float 1.9
            seconds = float(sum(Decimal(n) * _UNITS[u] for n, u in _PART.findall(text)))
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a duration >= 0, got {value!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be a duration of at most 3650d (ten years), got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest duration string that :func:`parse_duration` reads back exactly."""
    for unit in ("d", "h", "m", "s", "ms"):
        n = seconds / float(_UNITS[unit])
        if n >= 1 and n == int(n) and parse_duration(f"{int(n)}{unit}") == seconds:
            return f"{int(n)}{unit}"
    return repr(float(seconds))
