"""Collecting the problems of a recipe, each with its file, key path and line."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from toolkit.errors import RecipeError, RecipeErrors

#: ``locate(path) -> (file, line)``: where a key path was written
Locator = Callable[[tuple], tuple[str | None, int | None]]

_TOML_TYPES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def type_name(value: object) -> str:
    """``an integer``, ``a table``: TOML's names, as users know them."""
    for kind, name in _TOML_TYPES.items():
        if type(value) is kind:
            return name
    for kind, name in _TOML_TYPES.items():
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def show(value: object, limit: int = 40) -> str:
    """A short TOML-ish rendering of a value for messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'retries'?)"`` or ``""``."""
    import difflib  # here: this module is imported by workers too (``dotted``)

    close = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dotted(path: Iterable) -> str:
    """``task.estimate.params.samples``; list positions as ``[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Problems:
    """Gathers problems so that a user sees all of them at once."""

    def __init__(self, default_file: str | None, locate: Locator | None = None) -> None:
        self.default_file = default_file
        self.locate = locate
        self.errors: list[RecipeError] = []

    def add(self, path: Iterable, problem: str, *, where: str | None = None) -> None:
        path = tuple(path)
        file, line = self.default_file, None
        if self.locate is not None and path:
            file, line = self.locate(path)
        self.errors.append(RecipeError(file, where if where is not None else dotted(path), problem, line))

    def extend(self, errors: Iterable[RecipeError]) -> None:
        self.errors.extend(errors)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        """Raise them all, file by file in order of appearance, by line within a file."""
        if self.errors:
            files: dict[str | None, int] = {}
            for e in self.errors:
                files.setdefault(e.path, len(files))
            big = float("inf")
            ordered = sorted(
                self.errors, key=lambda e: (files[e.path], e.line if e.line is not None else big)
            )
            raise RecipeErrors(ordered)
