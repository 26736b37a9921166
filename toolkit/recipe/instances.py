"""A task's instances: its matrix's index space, and the params and id of each instance.

:class:`TaskInstances` holds the methods (``TaskSpec`` has them); :class:`TaskView` is a
task as worker processes receive it (``TaskSpec.for_worker()``): the same fields and
methods in a plain class. This module imports no attrs and none of the recipe loader,
so that a worker process (a fresh interpreter under spawn) imports little.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from toolkit.recipe.matrix import id_text

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from toolkit.recipe.matrix import Matrix
    from toolkit.recipe.params import ParamTemplate
    from toolkit.recipe.paths import FilePaths


class TaskInstances:
    """The instance methods of a task, from its name, ``_space`` (the matrix's
    :class:`~toolkit.recipe.matrix.Matrix`), ``_template`` (its params'
    :class:`~toolkit.recipe.params.ParamTemplate`) and ``_paths`` (its declared files,
    :class:`~toolkit.recipe.paths.FilePaths`)."""

    __slots__ = ()

    name: str
    uses: str
    params: dict[str, Any]
    matrix: dict[str, Any]
    needs: tuple[str, ...]
    retries: int
    timeout: float | None
    isolate: bool
    files: tuple[str, ...]
    outputs: tuple[str, ...]
    cache: bool | None
    #: the secret values in ``params``, longest first (masked when written or printed)
    secrets: tuple[str, ...]
    _space: Matrix
    _template: ParamTemplate
    _paths: FilePaths

    def to_table(self) -> dict[str, Any]:
        """The task as its ``[[task]]`` table, in recipe spelling."""
        from toolkit.durations import format_duration
        from toolkit.recipe.interpolate import escape_all
        from toolkit.recipe.masking import mask

        table: dict[str, Any] = {"name": self.name, "uses": self.uses}
        if self.params:
            table["params"] = mask(self._template.to_table(), self.secrets)
        if self.matrix:
            table["matrix"] = escape_all(self.matrix)
        if self.needs:
            table["needs"] = list(self.needs)
        table["retries"] = self.retries
        if self.timeout is not None:
            table["timeout"] = format_duration(self.timeout)
        table["isolate"] = self.isolate
        if self.files:
            table["files"] = list(self.files)
        if self.outputs:
            table["outputs"] = list(self.outputs)
        if self.cache is not None:
            table["cache"] = self.cache
        if self.cpus != 1:
            table["cpus"] = self.cpus
        if self.memory is not None:
            from toolkit.sizes import exact_size

            table["memory"] = exact_size(self.memory)
        return table

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

    def shown_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` as records, hooks and messages show them: each secret value (see
        ``${secret.NAME}``) as ``***``. The instance's content key is made from these, so
        that neither a record nor a key gives a secret away."""
        if not self.secrets:
            return params
        from toolkit.recipe.masking import mask

        return mask(params, self.secrets)

    def instance_id(self, combo: Mapping[str, Any]) -> str:
        """``estimate[method=plain,seed=3]``; the bare task name without a matrix."""
        if not combo:
            return self.name
        inner = ",".join(f"{k}={id_text(combo[k])}" for k in sorted(combo))
        return f"{self.name}[{inner}]"

    # -- the files of one instance -----------------------------------------
    @property
    def has_files(self) -> bool:
        """Whether the task declares ``files``, ``outputs`` or has a ``glob`` axis."""
        return bool(self._paths)

    @property
    def file_axes(self) -> tuple[str, ...]:
        """The names of the task's ``glob`` matrix axes (their values are input files)."""
        return self._paths.axes

    def input_files(self, params: Mapping[str, Any], root: Any) -> tuple[str, ...]:
        """The input files of the instance with these ``params`` (as :meth:`instances`
        or :meth:`params_for` give them): the ``files`` entries with ``${matrix.X}``
        filled, each glob expanded against ``root`` (the recipe's directory: matches
        sorted, files only; none is no file), then the values of the ``glob`` axes.

        Paths are relative to the recipe's directory, or absolute where the recipe wrote
        them so: ``root / path`` is the file. A literal path is given even if it does
        not exist. No duplicates; order kept."""
        return self._paths.inputs(self.name, params, root)

    def output_files(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The ``outputs`` of the instance with these ``params``, ``${matrix.X}`` filled;
        relative to the recipe's directory (or absolute), as :meth:`input_files`."""
        return self._paths.produced(self.name, params)

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


class TaskView(TaskInstances):
    """A task as workers receive it: a :class:`~toolkit.recipe.model.TaskSpec`'s fields
    and instance methods (``_space`` and ``_template`` shared, not made again), in a
    plain class that unpickles without attrs. ``TaskSpec.from_view`` gives the spec back."""

    __slots__ = (
        "_paths",
        "_space",
        "_template",
        "cache",
        "cpus",
        "files",
        "isolate",
        "matrix",
        "memory",
        "name",
        "needs",
        "outputs",
        "params",
        "retries",
        "secrets",
        "sources",
        "templates",
        "timeout",
        "uses",
    )

    name: str
    uses: str
    params: dict[str, Any]
    matrix: dict[str, Any]
    needs: tuple[str, ...]
    retries: int
    timeout: float | None
    isolate: bool
    cpus: int
    memory: int | None
    templates: tuple[tuple[Any, ...], ...]
    files: tuple[str, ...]
    outputs: tuple[str, ...]
    cache: bool | None
    sources: tuple[tuple[str, dict[str, str]], ...]
    secrets: tuple[str, ...]

    def __init__(self, spec: TaskInstances) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(spec, name))

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"TaskView(name={self.name!r}, uses={self.uses!r})"
