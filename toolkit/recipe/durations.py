"""Durations in recipes: ``"250ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` or seconds."""

from __future__ import annotations

import math
import re

from toolkit.recipe.problems import type_name

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")
_DURATION = re.compile(rf"(?:(?:{_NUMBER})\s*(?:ms|s|m|h|d)\s*)+")

HINT = "a number of seconds or a string such as '250ms', '30s', '5m', '2h', '1h30m'"


def parse_duration(value: object) -> float:
    """Seconds (a float >= 0) from a duration string or a number.

    Raises ``ValueError`` with a message meant for the user.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a duration ({HINT}), got {type_name(value)}")
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(f"{value!r} is not a duration: use {HINT}") from None
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a duration >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest string that :func:`parse_duration` reads back to ``seconds``."""
    for unit in ("d", "h", "m", "s"):
        n = seconds / _UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    ms = seconds * 1000
    if ms == int(ms):
        return f"{int(ms)}ms"
    return repr(float(seconds))
