"""Matrix expansion: product order, include/exclude as in GitHub Actions, laziness, ids."""

from __future__ import annotations

import pickle
import resource
import time

import pytest

from toolkit.recipe import read_recipe
from toolkit.recipe.matrix import Matrix


def task(matrix, params=None, name="t"):
    table = {"name": name, "uses": "shell", "matrix": matrix}
    if params is not None:
        table["params"] = params
    return read_recipe({"recipe": {"name": "m"}, "task": [table]}).tasks[0]


def combos(spec):
    return [c for _, c in spec.iter_combos()]


def test_product_in_sorted_axis_order_last_axis_fastest():
    spec = task({"seed": {"range": [0, 3]}, "method": ["plain", "antithetic"]})
    assert spec.space() == spec.count() == 6
    assert combos(spec) == [
        {"method": "plain", "seed": 0},
        {"method": "plain", "seed": 1},
        {"method": "plain", "seed": 2},
        {"method": "antithetic", "seed": 0},
        {"method": "antithetic", "seed": 1},
        {"method": "antithetic", "seed": 2},
    ]
    assert [spec.combo(i) for i in range(6)] == combos(spec)


def test_ranges_with_step_and_negative_step():
    assert combos(task({"x": {"range": [0, 10, 4]}})) == [{"x": 0}, {"x": 4}, {"x": 8}]
    assert combos(task({"x": {"range": [3, 0, -1]}})) == [{"x": 3}, {"x": 2}, {"x": 1}]


def test_github_actions_include_example():
    # https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs#example-expanding-configurations
    spec = task(
        {
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ],
        }
    )
    expected = [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert combos(spec) == expected
    assert spec.space() == spec.count() == 6


def test_github_actions_exclude_example():
    spec = task(
        {
            "os": ["macos", "windows"],
            "version": [12, 14, 16],
            "environment": ["staging", "production"],
            "exclude": [
                {"os": "macos", "version": 12, "environment": "production"},
                {"os": "windows", "version": 16},
            ],
        }
    )
    assert spec.space() == 12
    assert spec.count() == 9 == len(combos(spec))
    assert {"os": "macos", "version": 12, "environment": "production"} not in combos(spec)
    holes = [i for i in range(spec.space()) if spec.combo(i) is None]
    assert len(holes) == 3


def test_include_matching_only_excluded_combinations_becomes_its_own_instance():
    spec = task(
        {"x": [1, 2], "exclude": [{"x": 2}], "include": [{"x": 2, "extra": "back"}, {"x": 1, "y": 0}]}
    )
    assert combos(spec) == [{"x": 1, "y": 0}, {"x": 2, "extra": "back"}]
    assert spec.space() == 3 and spec.count() == 2


def test_include_only_matrix_lists_its_entries():
    spec = task({"include": [{"a": 1}, {"a": 2, "b": "x"}]})
    assert combos(spec) == [{"a": 1}, {"a": 2, "b": "x"}]
    assert spec.instance_id(spec.combo(1)) == "t[a=2,b=x]"


def test_exclude_value_not_on_the_axis_matches_nothing():
    spec = task({"x": [1, 2], "exclude": [{"x": 5}]})
    assert spec.count() == 2


def test_no_matrix_is_one_instance_with_the_bare_name():
    spec = task({})
    assert (spec.space(), spec.count(), combos(spec)) == (1, 1, [{}])
    assert spec.instance_id({}) == "t"


def test_counting_is_exact_against_brute_force():
    spec = task(
        {
            "a": {"range": [0, 7]},
            "b": ["x", "y", "z"],
            "c": [True, False],
            "exclude": [{"a": 3}, {"b": "y", "c": True}, {"a": 3, "b": "x"}, {"a": 5, "b": "z", "c": False}],
            "include": [{"a": 3, "b": "y", "c": True, "note": "readded"}, {"b": "z", "tag": 1}],
        }
    )
    listed = combos(spec)
    assert spec.count() == len(listed)
    assert {"a": 3, "b": "y", "c": True, "note": "readded"} in listed
    assert all(c.get("tag") == 1 for c in listed if c["b"] == "z" and "note" not in c)


def test_instance_ids_are_stable_and_sorted_by_key():
    spec = task({"seed": [3], "method": ["plain"], "flag": [True], "ratio": [0.5], "opts": [[1, 2]]})
    assert spec.instance_id(spec.combo(0)) == "t[flag=true,method=plain,opts=[1,2],ratio=0.5,seed=3]"


def test_params_for_substitutes_and_merges_combo():
    spec = task(
        {"seed": {"range": [0, 2]}, "name": ["a b"]},
        params={
            "n": "${matrix.seed}",
            "label": "run-${matrix.name}-${matrix.seed}",
            "deep": {"l": ["${matrix.seed}"]},
            "lit": "$${matrix.seed}",
        },
    )
    params = spec.params_for(spec.combo(1))
    assert params == {
        "n": 1,
        "label": "run-a b-1",
        "deep": {"l": [1]},
        "lit": "${matrix.seed}",
        "seed": 1,
        "name": "a b",
    }
    # the shared params are not changed by filling in
    assert spec.params_for(spec.combo(0))["deep"] == {"l": [0]}
    assert spec.params["deep"] == {"l": ["${matrix.seed}"]}


def test_matrix_values_override_params_of_the_same_name():
    spec = task({"x": [9]}, params={"x": 1, "y": 2})
    assert spec.params_for(spec.combo(0)) == {"x": 9, "y": 2}


def test_task_spec_pickles_with_its_expansion():
    spec = task(
        {"x": {"range": [0, 5]}, "exclude": [{"x": 2}], "include": [{"x": 9}]}, params={"v": "${matrix.x}"}
    )
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec
    assert combos(again) == combos(spec)
    assert again.params_for(again.combo(4)) == {"v": 4, "x": 4}


def test_a_million_instances_count_and_iterate_in_flat_memory():
    spec = task(
        {"a": {"range": [0, 1000]}, "b": {"range": [0, 1000]}, "exclude": [{"a": 7}]},
        params={"cmd": "echo ${matrix.a} ${matrix.b}"},
    )
    start = time.perf_counter()
    assert spec.count() == 999_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 0
    for _, combo in spec.iter_combos():
        n += 1
        if n % 50_000 == 0:
            spec.params_for(combo)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert n == 999_000
    assert grown_kb < 50_000  # nothing is kept per instance
    print(f"1M: {time.perf_counter() - start:.2f}s, peak RSS grew by {grown_kb} kB")


def test_iterating_starts_without_copying_the_axes():
    import itertools
    import tracemalloc

    spec = task({"a": {"range": [0, 10_000_000]}, "b": {"range": [0, 10_000_000]}})
    tracemalloc.start()
    try:
        first = [c for _, c in itertools.islice(spec.iter_combos(), 3)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first == [{"a": 0, "b": 0}, {"a": 0, "b": 1}, {"a": 0, "b": 2}]
    assert peak < 100_000
    assert spec.count() == 10**14


def test_index_out_of_range():
    spec = task({"x": [1, 2]})
    with pytest.raises(IndexError):
        spec.combo(2)
    with pytest.raises(IndexError):
        spec.combo(-1)


def test_matrix_class_directly_with_huge_space_counts_by_arithmetic():
    m = Matrix({"a": range(10**6), "b": range(10**6)}, exclude=[{"a": 1}, {"b": 2}])
    assert m.count() == 10**12 - 10**6 - 10**6 + 1
