"""TaskSpec.instances(indices): a batch expanded at once is what combo, params_for and
instance_id give index by index (the general path), whatever the matrix."""

from __future__ import annotations

import json
import os
import pickle

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from toolkit.errors import ToolkitError
from toolkit.recipe import read_recipe
from toolkit.recipe.matrix import id_text

EXAMPLES = int(os.environ.get("RECIPE_EXAMPLES", "200"))

scalars = st.one_of(
    st.integers(-(10**20), 10**20),
    st.text(max_size=4),
    st.booleans(),
    st.floats(allow_nan=False, width=32),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.sampled_from("ab"), scalars, max_size=2)
)
axis_names = st.sampled_from(["x", "seed", "method", "a_b", "Z9"])


@st.composite
def axes(draw):
    names = draw(st.lists(axis_names, unique=True, max_size=3))
    out = {}
    for name in names:
        if draw(st.booleans()):
            start = draw(st.integers(-5, 5))
            step = draw(st.sampled_from([1, 1, 2, -1, -3]))
            count = draw(st.integers(1, 5))
            out[name] = {
                "range": [start, start + step * count, step] if step != 1 else [start, start + count]
            }
        else:
            vals = draw(st.lists(values, min_size=1, max_size=4, unique_by=id_text))
            out[name] = vals
    return out


def pick(draw, axes_table, keys):
    """A table of some axes with values taken from them (or not), plus maybe new keys."""
    entry = {}
    for name in keys:
        axis = axes_table[name]
        options = list(range(*axis["range"])) if isinstance(axis, dict) else axis
        entry[name] = draw(st.one_of(st.sampled_from(options), scalars))
    return entry


@st.composite
def tasks(draw):
    matrix = draw(axes())
    names = list(matrix)
    if names and draw(st.booleans()):
        matrix["exclude"] = [
            pick(draw, matrix, draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
            for _ in range(draw(st.integers(1, 3)))
        ]
    if draw(st.integers(0, 3)) == 0:
        include = []
        for _ in range(draw(st.integers(1, 3))):
            entry = pick(draw, matrix, draw(st.lists(st.sampled_from(names), unique=True))) if names else {}
            extra = draw(st.dictionaries(st.sampled_from(["extra", "x", "k"]), scalars, max_size=2))
            entry.update(extra)
            if entry:
                include.append(entry)
        if include:
            matrix["include"] = include
    params = draw(
        st.dictionaries(
            st.sampled_from(["p", "x", "seed", "q"]), st.one_of(values, st.just([1, {"n": 2}])), max_size=3
        )
    )
    keys = sorted(set(names) | {k for e in matrix.get("include", ()) for k in e})
    if keys and draw(st.booleans()):
        ref = draw(st.sampled_from(keys))
        params[draw(st.sampled_from(["t", "p"]))] = draw(
            st.sampled_from([f"${{matrix.{ref}}}", f"v=${{matrix.{ref}}}!", f"$${{matrix.{ref}}}"])
        )
    table = {"name": draw(st.sampled_from(["t", "sq", "a-b"])), "uses": "shell", "matrix": matrix}
    if params:
        table["params"] = params
    try:
        return read_recipe({"recipe": {"name": "m"}, "task": [table]}).tasks[0]
    except ToolkitError:
        assume(False)


def expand(iterator):
    """Materialised, with params compared by their JSON (key order included), up to the
    error an instance raises (a standalone include without a key a template uses)."""
    out: list = []
    try:
        for position, index, params, iid in iterator:
            text = None if params is None else json.dumps(params, default=str)
            out.append((position, index, text, iid, None if params is None else list(params)))
    except ToolkitError as exc:
        out.append(str(exc))
    return out


def general(spec, indices):
    return expand(spec._instances_general(indices))


@settings(max_examples=EXAMPLES, deadline=None)
@given(tasks(), st.data())
def test_instances_match_the_per_index_path(spec, data):
    space = spec.space()
    every = range(space)
    assert expand(spec.instances(every)) == general(spec, every)
    start = data.draw(st.integers(0, space))
    stop = data.draw(st.integers(start, space))
    assert expand(spec.instances(range(start, stop))) == general(spec, range(start, stop))
    some = tuple(data.draw(st.lists(st.integers(0, space - 1), max_size=8))) if space else ()
    assert expand(spec.instances(some)) == general(spec, some)
    # a spec that travelled to a worker expands the same
    assert expand(pickle.loads(pickle.dumps(spec)).instances(every)) == general(spec, every)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(tasks(), st.sampled_from([-1, 0, 1, 7]))
def test_an_index_out_of_range_raises_as_combo_does(spec, beyond):
    index = spec.space() + beyond if beyond >= 0 else beyond
    with pytest.raises(IndexError):
        spec.combo(index)
    with pytest.raises(IndexError):
        list(spec.instances((index,)))


def test_params_are_fresh_dicts_and_keep_the_params_order():
    spec = read_recipe(
        {
            "recipe": {"name": "m"},
            "task": [{"name": "t", "uses": "shell", "params": {"x": 0, "p": 1}, "matrix": {"x": [5, 6]}}],
        }
    ).tasks[0]
    got = list(spec.instances(range(2)))
    assert [list(p.items()) for _, _, p, _ in got] == [[("x", 5), ("p", 1)], [("x", 6), ("p", 1)]]
    assert [iid for *_, iid in got] == ["t[x=5]", "t[x=6]"]
    got[0][2]["x"] = 99
    assert spec.params_for(spec.combo(0)) == {"x": 5, "p": 1}


@pytest.mark.parametrize(
    ("matrix", "params", "layout"),
    [
        ({"x": {"range": [0, 3]}}, {"p": 1}, ({"p": 1}, ("x",))),
        ({"b": [1], "a": [2], "exclude": [{"a": 2}]}, {}, ({}, ("a", "b"))),
        ({}, {"p": 1}, ({"p": 1}, ())),
        ({"x": [1], "include": [{"x": 1, "y": 2}]}, {}, None),
        ({"x": [1]}, {"s": "${matrix.x}"}, None),
    ],
)
def test_params_layout(matrix, params, layout):
    table = {"name": "t", "uses": "shell", "matrix": matrix, "params": params}
    spec = read_recipe({"recipe": {"name": "m"}, "task": [table]}).tasks[0]
    assert spec.params_layout() == layout
    if layout is not None:
        base, names = layout
        for _index, combo in spec.iter_combos():
            want = dict(base)
            want.update((n, combo[n]) for n in names)
            assert list(spec.params_for(combo).items()) == list(want.items())
