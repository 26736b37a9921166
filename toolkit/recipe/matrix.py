"""Lazy matrix expansion, with GitHub Actions' ``include`` and ``exclude``.

The instances of a task form an index space. Indices ``[0, product)`` are the
cartesian product of the axes (axes in sorted name order, the last one fastest);
an index whose combination matches an ``exclude`` entry is a hole. Indices
``[product, space)`` are the ``include`` entries that extend no combination and so
become instances of their own. Nothing here holds one object per instance: a
combination is decoded from its index on demand, and counts come from arithmetic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    Axis = Sequence[Any]  # a list of values, or a range


def freeze(value: Any) -> Any:
    """A hashable, type-tagged form: ``1``, ``1.0`` and ``true`` stay distinct."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return ("f", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list | tuple):
        return ("l", tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return ("d", tuple(sorted((str(k), freeze(v)) for k, v in value.items())))
    return ("o", repr(value))


def id_text(value: Any) -> str:
    """A matrix value as it appears in an instance id: ``plain``, ``3``, ``true``, ``[1,2]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return str(value)


def axis_values(spec: Any) -> Axis:
    """The values of a validated axis: a list, or ``{ range = [start, stop(, step)] }``."""
    if isinstance(spec, dict):
        return range(*spec["range"])
    return spec


class Matrix:
    """The index space of one task's matrix. Picklable; cheap to keep per worker."""

    __slots__ = ("extenders", "names", "product", "rules", "sizes", "space", "standalone", "values")

    def __init__(
        self,
        axes: Mapping[str, Axis],
        include: Sequence[Mapping[str, Any]] = (),
        exclude: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.names: tuple[str, ...] = tuple(sorted(axes))
        self.values: tuple[Axis, ...] = tuple(axes[n] for n in self.names)
        self.sizes: tuple[int, ...] = tuple(len(v) for v in self.values)
        if self.names:
            self.product = math.prod(self.sizes)
        else:
            # no axes: with include entries, each entry is an instance (as in GitHub
            # Actions); without, the task is one instance with an empty combination
            self.product = 0 if include else 1
        lookups = [_lookup(v) for v in self.values]
        position = {n: i for i, n in enumerate(self.names)}

        # exclude entries as ((axis position, value index), ...); one naming a value
        # that is not on its axis can match nothing and is dropped
        rules = []
        for entry in exclude:
            rule = _compile(entry, position, lookups)
            if rule is not None and all(k in position for k in entry):
                rules.append(rule)
        self.rules: tuple[tuple[tuple[int, int], ...], ...] = tuple(rules)

        extenders, standalone = [], []
        for entry in include:
            match = _compile(entry, position, lookups)
            extra = {k: v for k, v in entry.items() if k not in position}
            if match is not None and self.product and self._live_in(dict(match)):
                extenders.append((match, extra))
            else:
                standalone.append(dict(entry))
        self.extenders: tuple[tuple[tuple[tuple[int, int], ...], dict[str, Any]], ...] = tuple(extenders)
        self.standalone: tuple[dict[str, Any], ...] = tuple(standalone)
        self.space = self.product + len(self.standalone)

    # -- counting ----------------------------------------------------------
    def count(self) -> int:
        """Instances: the product minus the excluded, plus the standalone includes."""
        return self.product - self._excluded_in({}) + len(self.standalone)

    def _live_in(self, fixed: dict[int, int]) -> bool:
        """Whether the sub-grid with these axes fixed holds a combination not excluded."""
        size = math.prod(1 if i in fixed else s for i, s in enumerate(self.sizes))
        return size - self._excluded_in(fixed) > 0

    def _excluded_in(self, fixed: dict[int, int]) -> int:
        """How many combinations of the sub-grid (``fixed`` axes pinned) are excluded.

        Only axes that exclude rules mention decide a match, and on such an axis only
        the mentioned values differ from each other: every other value behaves alike.
        So the count enumerates those few classes of values, weighted by their sizes,
        instead of the combinations themselves.
        """
        if not self.rules:
            return 0
        mentioned: dict[int, set[int]] = {}
        for rule in self.rules:
            for pos, vi in rule:
                mentioned.setdefault(pos, set()).add(vi)
        weight = 1
        for pos, size in enumerate(self.sizes):
            if pos not in mentioned and pos not in fixed:
                weight *= size
        axes = sorted(mentioned)
        classes = []
        for pos in axes:
            if pos in fixed:
                classes.append(((fixed[pos], 1),))
            else:
                values = sorted(mentioned[pos])
                other = self.sizes[pos] - len(values)
                classes.append(tuple((v, 1) for v in values) + (((-1, other),) if other else ()))
        total = 0
        slot = {pos: i for i, pos in enumerate(axes)}
        for choice in itertools.product(*classes):
            if any(all(choice[slot[p]][0] == vi for p, vi in rule) for rule in self.rules):
                total += math.prod(c[1] for c in choice)
        return total * weight

    # -- one instance ------------------------------------------------------
    def digits(self, index: int) -> list[int]:
        out = [0] * len(self.sizes)
        for pos in range(len(self.sizes) - 1, -1, -1):
            index, out[pos] = divmod(index, self.sizes[pos])
        return out

    def combo(self, index: int) -> dict[str, Any] | None:
        """The matrix values of the instance at ``index``, or None if it is excluded."""
        if index < 0:
            raise IndexError(f"matrix index {index} out of range")
        if index >= self.product:
            if index >= self.space:
                raise IndexError(f"matrix index {index} out of range (space {self.space})")
            return dict(self.standalone[index - self.product])
        return self._from_digits(self.digits(index))

    def _from_digits(self, digits: Sequence[int]) -> dict[str, Any] | None:
        for rule in self.rules:
            for pos, vi in rule:
                if digits[pos] != vi:
                    break
            else:
                return None
        combo = {name: self.values[pos][digits[pos]] for pos, name in enumerate(self.names)}
        for match, extra in self.extenders:
            for pos, vi in match:
                if digits[pos] != vi:
                    break
            else:
                combo.update(extra)
        return combo

    def iter_combos(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, combo)`` for every instance, in index order."""
        if self.product:
            for index, digits in enumerate(self._grid()):
                combo = self._from_digits(digits)
                if combo is not None:
                    yield index, combo
        for offset, entry in enumerate(self.standalone):
            yield self.product + offset, dict(entry)

    def _grid(self) -> Iterator[list[int]]:
        """Every digit vector in index order (one list, updated in place).

        An odometer rather than ``itertools.product``, which would first copy every
        axis into a tuple: a million-value range must stay a range.
        """
        sizes = self.sizes
        digits = [0] * len(sizes)
        if not sizes:
            yield digits  # no axes: the one empty combination
            return
        inner = range(sizes[-1])
        while True:
            for d in inner:
                digits[-1] = d
                yield digits
            pos = len(sizes) - 2
            while pos >= 0:
                digits[pos] += 1
                if digits[pos] < sizes[pos]:
                    break
                digits[pos] = 0
                pos -= 1
            if pos < 0:
                return

    def keys(self) -> set[str]:
        """Every name a combination can have: the axes and the include keys."""
        out = set(self.names)
        for _, extra in self.extenders:
            out.update(extra)
        for entry in self.standalone:
            out.update(entry)
        return out


def _lookup(values: Axis) -> Any:
    """``value -> index on the axis`` (or None), without listing a range."""
    if isinstance(values, range):
        return lambda v, r=values: r.index(v) if type(v) is int and v in r else None
    table = {}
    for i, v in enumerate(values):
        table.setdefault(freeze(v), i)
    return lambda v, t=table: t.get(freeze(v))


def _compile(entry: Mapping[str, Any], position: Mapping[str, int], lookups: list) -> Any:
    """An entry's axis keys as ``((position, value index), ...)``; None if a value is off-axis."""
    out = []
    for key, value in entry.items():
        pos = position.get(key)
        if pos is None:
            continue
        vi = lookups[pos](value)
        if vi is None:
            return None
        out.append((pos, vi))
    return tuple(sorted(out))
