"""Reading many manifests fast: ``toolkit ui``'s run list and retention read hundreds.

A manifest ends with the ``[resolved]`` recipe, usually most of its bytes; what a list
of runs shows (id, status, times, counts) comes before it. :func:`read_head` parses the
text up to that table only, 5-20x faster than the whole file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from toolkit.store.rundir import MANIFEST

_RESOLVED = "\n[resolved"


def read_head(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of ``run_dir`` without its ``[resolved]`` recipe; None when it is
    missing or cannot be read."""
    try:
        with open(Path(run_dir) / MANIFEST, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    cut = text.find(_RESOLVED)
    try:
        return tomllib.loads(text[: cut + 1] if cut >= 0 else text)
    except tomllib.TOMLDecodeError:
        try:  # the cut fell somewhere unexpected: the whole file, then
            return tomllib.loads(text) if cut >= 0 else None
        except tomllib.TOMLDecodeError:
            return None
