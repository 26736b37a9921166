"""Installed plugins: the entry points of one group, found without importing
``importlib.metadata`` (~15 ms: email, zipfile, ...) on every start of the command line.

Finding the entry points of one group only takes reading the ``entry_points.txt`` of
the distributions on ``sys.path``, in importlib.metadata's order and with its rule that
the first distribution of a name wins. Anything this does not handle (a zip or egg on
``sys.path``, another finder of distributions, an ``entry_points.txt`` it cannot read)
falls back to ``importlib.metadata`` itself.
"""

from __future__ import annotations

import importlib
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

#: ``module``, ``module:attr.attr``, with optional ``[extras]`` (importlib.metadata's)
_ENTRY_POINT_VALUE = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
_INFO_SUFFIXES = (".dist-info", ".egg-info")


class _Unusual(Exception):
    """Something the scan leaves to ``importlib.metadata``."""


class EntryPoint:
    """An entry point: ``name = value`` of a group, and the name and version of its
    distribution."""

    __slots__ = ("_folder", "_version", "distribution", "group", "name", "value")

    def __init__(
        self,
        name: str,
        value: str,
        group: str,
        folder: str | None = None,
        version: str | None = None,
        distribution: str | None = None,
    ) -> None:
        self.name = name
        self.value = value
        self.group = group
        self._folder = folder
        self._version = version
        if distribution is None and folder is not None:
            # ``toolkit_dask-0.1.0.dist-info``: the name is what comes before the first "-"
            distribution = os.path.basename(folder).split("-", 1)[0]
            for suffix in _INFO_SUFFIXES:
                distribution = distribution.removesuffix(suffix)
        self.distribution = distribution

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    @property
    def version(self) -> str | None:
        """The ``Version`` of the distribution's metadata (read when asked)."""
        if self._folder is not None:
            self._version = _metadata_version(self._folder)
            self._folder = None
        return self._version

    def load(self) -> Any:
        """Import the module and return it, or the attribute the value names."""
        import re

        match = re.match(_ENTRY_POINT_VALUE, self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: {self.value!r} is not 'module' or 'module:attr'")
        target = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            target = getattr(target, attr)
        return target


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unusual from exc


def _metadata_version(folder: str) -> str | None:
    """The ``Version:`` header of a distribution's METADATA (PKG-INFO for egg-info, or
    the file itself for an egg-info file), as importlib.metadata reads it."""
    for path in (os.path.join(folder, "METADATA"), os.path.join(folder, "PKG-INFO"), folder):
        try:
            with open(path, encoding="utf-8") as f:
                empty = True
                for line in f:
                    empty = False
                    if not line.rstrip("\r\n"):
                        break  # the end of the headers
                    if line[:8].lower() == "version:":
                        return line[8:].lstrip(" \t").rstrip("\r\n")
                if not empty:
                    return None
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _normalized(name: str) -> str:
    """``re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")``, importlib.metadata's
    normalized distribution name, without compiling a pattern."""
    name = name.lower().replace("-", "_").replace(".", "_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def distribution_folders() -> Iterator[str]:
    """The metadata folders of the distributions on ``sys.path``, in importlib.metadata's
    order (``sys.path`` order, then each folder's listing), the first of each name only.

    Raises ``_Unusual`` for what only importlib.metadata knows how to read."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            raise _Unusual(f"{finder!r} finds distributions")
    seen: set[str] = set()
    for entry in sys.path:
        if not isinstance(entry, str):
            raise _Unusual(f"{entry!r} on sys.path")
        try:
            children = os.listdir(entry or ".")
        except OSError:
            if os.path.exists(entry or "."):
                raise _Unusual(f"{entry!r} is not a folder") from None  # a zip file, say
            continue
        if os.path.basename(entry).lower().endswith(".egg"):
            raise _Unusual(f"{entry!r} is an egg")
        for child in children:
            low = child.lower()
            if not low.endswith(_INFO_SUFFIXES):
                continue
            if not child.endswith(_INFO_SUFFIXES):
                raise _Unusual(f"{child!r}: its name is read from its metadata")
            key = _normalized(low.rpartition(".")[0].partition("-")[0])
            if key not in seen:
                seen.add(key)
                yield os.path.join(entry, child)


def _parse_entry_points(text: str, group: str, folder: str) -> list[EntryPoint]:
    """The entry points of ``group`` in an ``entry_points.txt`` (importlib.metadata's
    reading: stripped lines, ``#`` comments, ``[group]`` sections, ``name = value``)."""
    found = []
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            name, sep, value = line.partition("=")
            if not sep:
                raise _Unusual(f"{folder}: entry point line {line!r}")
            found.append(EntryPoint(name.strip(), value.strip(), group, folder))
    return found


def entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, as ``importlib.metadata.entry_points(group=
    group)`` lists them, without importing it unless the environment needs it."""
    try:
        found = []
        for folder in distribution_folders():
            text = _read_text(os.path.join(folder, "entry_points.txt"))
            if text is not None and group in text:
                found += _parse_entry_points(text, group, folder)
        return found
    except _Unusual:
        from importlib import metadata

        return [
            EntryPoint(
                ep.name,
                ep.value,
                ep.group,
                version=ep.dist.version if ep.dist else None,
                distribution=ep.dist.name if ep.dist else None,
            )
            for ep in metadata.entry_points(group=group)
        ]
