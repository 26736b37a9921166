"""Property tests: whatever a recipe holds, the loader answers with a toolkit error or a recipe."""

from __future__ import annotations

import copy
import itertools
import os
import string
import textwrap
import tomllib

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.errors import ToolkitError
from toolkit.manager import LoadSpec, make_plugin_manager
from toolkit.recipe import check_recipe, read_recipe
from toolkit.recipe.interpolate import InterpolationError, parse
from toolkit.recipe.matrix import Matrix

#: RECIPE_EXAMPLES=5000 for a longer hunt than the default quick run
EXAMPLES = int(os.environ.get("RECIPE_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

VALID = {
    "recipe": {"name": "prop", "description": "d", "plugins": ["toolkit.conformance"]},
    "vars": {"n": 3, "word": "w", "nested": {"a": [1, 2]}},
    "run": {"executor": "auto", "workers": 2, "retries": 1, "timeout": "30s", "keep_going": False},
    "output": {"dir": "runs", "formats": ["jsonl", "csv"]},
    "executor": {"pool": {}},
    "schedule": {"every": "15m"},
    "task": [
        {
            "name": "sq",
            "uses": "conformance.square",
            "matrix": {"x": {"range": [0, "${vars.n}"]}, "include": [{"x": 9}], "exclude": [{"x": 1}]},
            "retries": 0,
            "timeout": 5,
            "isolate": False,
        },
        {"name": "sum", "uses": "conformance.add_inputs", "needs": ["sq"]},
        {
            "name": "echo",
            "uses": "shell",
            "params": {"cmd": "echo ${vars.word} ${matrix.k}"},
            "matrix": {"k": ["a", "b"]},
        },
    ],
}

KEYS = [
    "recipe",
    "vars",
    "run",
    "output",
    "task",
    "name",
    "uses",
    "params",
    "matrix",
    "needs",
    "retries",
    "timeout",
    "workers",
    "executor",
    "formats",
    "include",
    "exclude",
    "range",
    "plugins",
    "x",
    "k",
    "schedule",
    "every",
    "isolate",
    "keep_going",
    "start_method",
    "dir",
    "cron",
    "max_tasks_per_worker",
]
REFS = [
    "${vars.n}",
    "${vars.nested.a}",
    "${env.HOME:-x}",
    "${matrix.x}",
    "${recipe.name}",
    "${",
    "$${",
    "${vars.}",
    "${nope.x}",
    "${vars.word}",
    "${env.X:-}",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from([*REFS, "5m", "250ms", "-1s", "pool", "process", "fork", "sq", "jsonl", "csv"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw):
    table = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(table) if p]
        path = draw(st.sampled_from(paths))
        parent = table
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
        else:
            parent.append(draw(values))
    return table


def _exercise(table):
    try:
        recipe = read_recipe(table, environ={"HOME": "/h"})
        # the resolved recipe writes as TOML and reads back as the same recipe (compared
        # as text: a NaN is never equal to itself)
        text = tomli_w.dumps(recipe.to_table())
        assert tomli_w.dumps(read_recipe(tomllib.loads(text), environ={}).to_table()) == text
        for spec in recipe.tasks:
            assert spec.count() <= spec.space()
            for _, combo in itertools.islice(spec.iter_combos(), 5):
                spec.params_for(combo)
                spec.instance_id(combo)
        pm = make_plugin_manager(LoadSpec(autoload=False), warn=False)
        pm.load_recipe_plugins(recipe.plugins)
        check_recipe(recipe, pm)
    except ToolkitError as exc:
        assert str(exc)


def test_the_valid_base_is_valid():
    pm = make_plugin_manager(LoadSpec(autoload=False), warn=False)
    recipe = read_recipe(VALID)
    pm.load_recipe_plugins(recipe.plugins)
    check_recipe(recipe, pm)


@SETTINGS
@given(mutated())
def test_mutated_recipes_give_a_recipe_or_a_toolkit_error(table):
    _exercise(table)


@SETTINGS
@given(st.dictionaries(keys, values, max_size=6))
def test_random_tables_give_a_recipe_or_a_toolkit_error(table):
    _exercise(table)


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                [
                    "run.workers=3",
                    "task.sq.retries=2",
                    "vars.n=[1",
                    "task.zz.x=1",
                    "=",
                    "a.b.c=d",
                    "task.sq=1",
                    "task=3",
                    "run=1",
                    "recipe.name=x y",
                    "task.sq.matrix.x.range=[1,0]",
                ]
            ),
        ),
        max_size=3,
    )
)
def test_random_overrides_give_a_recipe_or_a_toolkit_error(overrides):
    try:
        read_recipe(VALID, overrides=overrides)
    except ToolkitError as exc:
        assert str(exc)


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=300), st.integers(0, 2000))
def test_mutated_toml_text_through_the_cli_never_prints_a_traceback(tmp_path_factory, noise, at):
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from toolkit.cli import main

    text = textwrap.dedent(tomli_w.dumps(VALID))
    at = min(at, len(text))
    folder = tmp_path_factory.mktemp("m")
    path = folder / "r.toml"
    path.write_text(text[:at] + noise + text[at:])
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(path)])
    assert code in (0, 2)
    assert "Traceback" not in err.getvalue()


@SETTINGS
@given(st.text(alphabet="${}.:-abvrsenvmatrix_ ", max_size=30))
def test_the_reference_parser_only_raises_its_own_error(text):
    try:
        parse(text)
    except InterpolationError:
        pass


def _reference_expansion(axes, include, exclude):
    """GitHub Actions' algorithm, written plainly, over lists."""
    names = sorted(axes)
    product = [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(axes[n] for n in names))]
    if not names:
        product = [] if include else [{}]
    kept = [c for c in product if not any(all(k in c and c[k] == v for k, v in e.items()) for e in exclude)]
    combos = [dict(c) for c in kept]
    extra = []
    for entry in include:
        matched = False
        for original, combo in zip(kept, combos, strict=True):
            if all(original[k] == v for k, v in entry.items() if k in original):
                combo.update({k: v for k, v in entry.items() if k not in original})
                matched = True
        if not matched or not kept:
            extra.append(dict(entry))
    return combos + extra


small = st.integers(0, 3)


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abc"), st.lists(small, min_size=1, max_size=3, unique=True), max_size=3),
    st.lists(st.dictionaries(st.sampled_from("abcd"), small, min_size=1, max_size=3), max_size=3),
    st.lists(st.dictionaries(st.sampled_from("abc"), small, min_size=1, max_size=2), max_size=3),
)
def test_lazy_matrix_matches_the_plain_algorithm(axes, include, exclude):
    exclude = [e for e in exclude if all(k in axes for k in e)]
    m = Matrix(axes, include, exclude)
    listed = [c for _, c in m.iter_combos()]
    assert listed == _reference_expansion(axes, include, exclude)
    assert m.count() == len(listed)
    assert [c for c in (m.combo(i) for i in range(m.space)) if c is not None] == listed
