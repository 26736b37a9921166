"""Sizes of memory in recipes: ``"512M"``, ``"4G"``, ``"1.5G"`` or a number of bytes.

Units are powers of 1024, as in SLURM's ``--mem`` and Docker's ``--memory``: ``K``,
``M``, ``G``, ``T``, with or without ``B`` or ``iB`` (``"4GiB"`` = ``"4GB"`` = ``"4G"``),
in either case.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)

HINT = "a number of bytes or a string such as '512M', '4G', '1.5G'"


def parse_size(value: object) -> int:
    """Bytes (an int > 0) from a size string or a number; ``ValueError`` with a message
    meant for the user."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        shown = "a boolean" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise ValueError(f"must be a size ({HINT}), got {shown}")
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a size: use {HINT}")
        number, unit = match.groups()
        size = float(number) * _UNITS[unit.lower()]
    else:
        size = float(value)
    if not size >= 1 or size > 1 << 60:
        raise ValueError(f"must be a size of at least 1 byte, got {value!r}")
    return int(size)


def exact_size(size: int) -> str | int:
    """``size`` as the recipe would spell it: ``"512M"`` when a unit divides it, else
    the number of bytes (:func:`parse_size` reads either back exactly)."""
    for unit, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return size


def format_size(size: float) -> str:
    """A size for people: ``"512M"``, ``"1.5G"``, ``"200.3M"`` (four significant digits
    at most: a peak just over its limit reads as more than the limit)."""
    for unit, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor:
            n = size / factor
            text = f"{n:.0f}" if n >= 1000 else f"{n:.4g}"
            return f"{text}{unit}"
    return f"{int(size)}B"
