"""The recipe as frozen attrs objects: :class:`Recipe`, :class:`TaskSpec` and settings.

Build a recipe with :func:`toolkit.recipe.read_recipe` (or :meth:`Recipe.from_table`),
which validates everything first; write it back with ``tomli_w.dumps(r.to_table())``.
Every object here pickles: a recipe travels to worker processes.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import validators as av

from toolkit.durations import format_duration
from toolkit.recipe.interpolate import escape
from toolkit.recipe.keys import NAME_RE, START_METHODS
from toolkit.recipe.matrix import Matrix, axis_values, id_text
from toolkit.recipe.params import ParamTemplate

if TYPE_CHECKING:
    from toolkit.schedule.spec import ScheduleSpec


def default_workers() -> int:
    """The CPUs this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


av_name = av.matches_re(NAME_RE)
_timeout = av.optional([av.instance_of(float), av.gt(0.0)])
_count = [av.instance_of(int), av.ge(0)]


@attrs.frozen(kw_only=True)
class RunSettings:
    """The ``[run]`` table."""

    executor: str = attrs.field(default="auto", validator=av.instance_of(str))
    workers: int = attrs.field(factory=default_workers, validator=[av.instance_of(int), av.ge(1)])
    retries: int = attrs.field(default=0, validator=_count)
    timeout: float | None = attrs.field(default=None, validator=_timeout)
    keep_going: bool = attrs.field(default=False, validator=av.instance_of(bool))
    max_tasks_per_worker: int = attrs.field(default=0, validator=_count)
    start_method: str | None = attrs.field(default=None, validator=av.optional(av.in_(START_METHODS)))

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "executor": self.executor,
            "workers": self.workers,
            "retries": self.retries,
            "keep_going": self.keep_going,
            "max_tasks_per_worker": self.max_tasks_per_worker,
        }
        if self.timeout is not None:
            table["timeout"] = format_duration(self.timeout)
        if self.start_method is not None:
            table["start_method"] = self.start_method
        return table


def _with_jsonl(formats: Any) -> tuple[str, ...]:
    out = ["jsonl"]
    for name in formats:
        if name not in out:
            out.append(name)
    return tuple(out)


@attrs.frozen(kw_only=True)
class OutputSettings:
    """The ``[output]`` table. ``formats`` always starts with ``jsonl``."""

    dir: str = attrs.field(default="runs", validator=av.instance_of(str))
    formats: tuple[str, ...] = attrs.field(default=("jsonl",), converter=_with_jsonl)

    def to_table(self) -> dict[str, Any]:
        return {"dir": self.dir, "formats": list(self.formats)}


@attrs.frozen(kw_only=True)
class TaskSpec:
    """One ``[[task]]``, resolved: its instances come from :meth:`combo` by index.

    ``params`` holds the values with ``${vars...}``, ``${env...}`` and ``${recipe...}``
    resolved; strings that still use ``${matrix.NAME}`` are kept as written (with
    ``$${`` for a literal ``${``) and listed in ``templates`` by their path in params.
    ``matrix`` is the validated matrix table as in TOML.
    """

    name: str = attrs.field(validator=av_name)
    uses: str = attrs.field(validator=av.instance_of(str))
    params: dict[str, Any] = attrs.field(factory=dict)
    matrix: dict[str, Any] = attrs.field(factory=dict)
    needs: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    retries: int = attrs.field(default=0, validator=_count)
    timeout: float | None = attrs.field(default=None, validator=_timeout)
    isolate: bool = attrs.field(default=False, validator=av.instance_of(bool))
    templates: tuple[tuple[Any, ...], ...] = attrs.field(default=(), converter=tuple)
    # derived, rebuilt from the fields above; small, so it simply pickles along
    _space: Matrix = attrs.field(init=False, eq=False, repr=False)
    _template: ParamTemplate = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        axes = {k: axis_values(v) for k, v in self.matrix.items() if k not in ("include", "exclude")}
        space = Matrix(axes, self.matrix.get("include", ()), self.matrix.get("exclude", ()))
        object.__setattr__(self, "_space", space)
        object.__setattr__(self, "_template", ParamTemplate(self.name, self.params, self.templates))

    # -- the index space ---------------------------------------------------
    def space(self) -> int:
        """Size of the index space: the product of the axes plus standalone includes."""
        return self._space.space

    def count(self) -> int:
        """Number of instances: the space minus the excluded combinations."""
        return self._space.count()

    def combo(self, index: int) -> dict[str, Any] | None:
        """Matrix values of the instance at ``index``; None if that index is excluded."""
        return self._space.combo(index)

    def iter_combos(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, combo)`` of every instance, by ascending index."""
        return self._space.iter_combos()

    def matrix_keys(self) -> set[str]:
        """Every name a combination may carry (axes and include keys)."""
        return self._space.keys()

    # -- one instance ------------------------------------------------------
    def params_for(self, combo: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of one instance: params, ``${matrix.X}`` filled, combo over."""
        return self._template.fill(combo)

    def instance_id(self, combo: Mapping[str, Any]) -> str:
        """``estimate[method=plain,seed=3]``; the bare task name without a matrix."""
        if not combo:
            return self.name
        inner = ",".join(f"{k}={id_text(combo[k])}" for k in sorted(combo))
        return f"{self.name}[{inner}]"

    # -- a batch of instances ----------------------------------------------------
    def instances(self, indices: Iterable[int]) -> Iterator[tuple[int, int, Any, Any]]:
        """``(position, index, params, instance id)`` for each of ``indices``, in order;
        an index the matrix excludes gives ``(position, index, None, None)``.

        What :meth:`combo`, :meth:`params_for` and :meth:`instance_id` give index by
        index (the worker's batch loop uses this), faster: a matrix without ``include``
        entries and params without ``${matrix.X}`` templates (the usual shapes) is expanded
        here directly; any other goes through those three methods."""
        space = self._space
        if self._template.compiled or space.extenders or space.standalone or not space.names:
            return self._instances_general(indices)
        if len(space.names) == 1 and not space.rules:
            return self._instances_one_axis(indices)
        return self._instances_product(indices)

    def _instances_general(self, indices: Iterable[int]) -> Iterator[tuple[int, int, Any, Any]]:
        combo_of, params_for, id_of = self.combo, self.params_for, self.instance_id
        for position, index in enumerate(indices):
            combo = combo_of(index)
            if combo is None:
                yield position, index, None, None
            else:
                yield position, index, params_for(combo), id_of(combo)

    def _instances_one_axis(self, indices: Iterable[int]) -> Iterator[tuple[int, int, Any, Any]]:
        # params_for(combo) is dict(params) updated with the combo: {**base, axis: value}
        # keeps the position of an axis that params also name, as update does
        space = self._space
        name = space.names[0]
        values = space.values[0]
        size = space.product
        base = self._template.params
        head = f"{self.name}[{name}="
        if (
            type(values) is range
            and type(indices) is range
            and indices.step == 1
            and (not indices or 0 <= indices.start <= indices[-1] < size)
        ):
            # consecutive indices on a range axis (a batch of the usual sweep): the values
            # are a slice of the range, every one an int, whose id text is str(int)
            start = indices.start
            for position, value in enumerate(values[start : indices.stop]):
                yield (
                    position,
                    start + position,
                    {**base, name: value} if base else {name: value},
                    f"{head}{value}]",
                )
            return
        for position, index in enumerate(indices):
            if not 0 <= index < size:
                space.combo(index)  # raises the IndexError
            value = values[index]
            kind = type(value)
            text = value if kind is str else str(value) if kind is int else id_text(value)
            yield position, index, {**base, name: value} if base else {name: value}, f"{head}{text}]"

    def _instances_product(self, indices: Iterable[int]) -> Iterator[tuple[int, int, Any, Any]]:
        # a product of axes (excluded combinations left out): the combo holds the axes in
        # sorted name order, which is also the order of the instance id
        space = self._space
        names, values, sizes, rules = space.names, space.values, space.sizes, space.rules
        size = space.product
        back = range(len(sizes) - 1, -1, -1)
        axes = tuple(zip(names, values, strict=True))
        base = self._template.params
        head = f"{self.name}["
        for position, index in enumerate(indices):
            if not 0 <= index < size:
                space.combo(index)  # raises the IndexError
            digits = [0] * len(sizes)
            rest = index
            for pos in back:
                rest, digits[pos] = divmod(rest, sizes[pos])
            if rules and any(all(digits[p] == vi for p, vi in rule) for rule in rules):
                yield position, index, None, None
                continue
            params = dict(base)
            parts = []
            for (name, axis), digit in zip(axes, digits, strict=True):
                value = params[name] = axis[digit]
                kind = type(value)
                text = value if kind is str else str(value) if kind is int else id_text(value)
                parts.append(f"{name}={text}")
            yield position, index, params, f"{head}{','.join(parts)}]"

    def params_layout(self) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        """``(base, names)`` when the params of every instance are ``dict(base)`` updated
        with its matrix values of ``names``, in that order (no ``${matrix.X}`` template,
        no ``include`` entry); None otherwise. ``base`` is shared: do not change it."""
        space = self._space
        if self._template.compiled or space.extenders or space.standalone:
            return None
        return self._template.params, space.names

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"name": self.name, "uses": self.uses}
        if self.params:
            table["params"] = self._template.to_table()
        if self.matrix:
            table["matrix"] = escape_all(self.matrix)
        if self.needs:
            table["needs"] = list(self.needs)
        table["retries"] = self.retries
        if self.timeout is not None:
            table["timeout"] = format_duration(self.timeout)
        table["isolate"] = self.isolate
        return table


def escape_all(value: Any) -> Any:
    """A resolved value in recipe spelling: every literal ``${`` as ``$${``."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: escape_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_all(v) for v in value]
    return value


@attrs.frozen(kw_only=True)
class Recipe:
    """A validated recipe with every reference resolved."""

    name: str = attrs.field(validator=av_name)
    description: str = ""
    path: pathlib.Path | None = None
    base_dir: pathlib.Path = attrs.field(factory=pathlib.Path.cwd)
    plugins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    vars: dict[str, Any] = attrs.field(factory=dict)
    run: RunSettings = attrs.field(factory=RunSettings)
    output: OutputSettings = attrs.field(factory=OutputSettings)
    executors: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    schedule: ScheduleSpec | None = None
    tasks: tuple[TaskSpec, ...] = attrs.field(default=(), converter=tuple)
    #: the ``--set`` overrides applied (already part of the values above)
    overrides: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @classmethod
    def from_table(
        cls,
        table: Mapping[str, Any],
        *,
        overrides: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Recipe:
        """Validate a table shaped like the TOML and build the recipe (see ``read_recipe``)."""
        from toolkit.recipe.loader import read_recipe

        return read_recipe(table, overrides=overrides, environ=environ)

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_table(self) -> dict[str, Any]:
        """The resolved recipe as TOML tables (no None anywhere: ``tomli_w`` writes it)."""
        head: dict[str, Any] = {"name": self.name}
        if self.description:
            head["description"] = escape(self.description)
        if self.plugins:
            head["plugins"] = list(self.plugins)
        table: dict[str, Any] = {"recipe": head}
        if self.vars:
            table["vars"] = escape_all(self.vars)
        table["run"] = self.run.to_table()
        table["output"] = self.output.to_table()
        if self.executors:
            table["executor"] = escape_all(self.executors)
        if self.schedule is not None:
            table["schedule"] = self.schedule.to_table()
        table["task"] = [t.to_table() for t in self.tasks]
        return table
