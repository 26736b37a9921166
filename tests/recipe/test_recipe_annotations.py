"""Params and matrix values are checked against the task's annotations at validation:
a wrong type is one clear error (exit 2) before anything runs, not N failed instances."""

from __future__ import annotations

import datetime
import os
import pathlib
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NewType, Optional, Union

import pytest

from toolkit.cli import main
from toolkit.recipe.annotations import param_checks

UserId = NewType("UserId", int)


def fits(annotation: Any, value: Any) -> bool:
    def task(x): ...

    task.__annotations__ = {"x": annotation}
    checks = param_checks(task)
    return "x" not in checks or checks["x"][0][0](value)


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (int, [0, -3, 10**18], ["3", 1.5, True, [1]]),
        (float, [1.5, 2, -0.0], ["1.5", False, None]),
        (str, ["", "x"], [1, ["x"], {"a": "b"}]),
        (bool, [True, False], [0, 1, "true"]),
        (list, [[], [1, "a"]], ["ab", {"a": 1}]),
        (list[int], [[], [1, 2]], [[1, "2"], [True], 1]),
        (Sequence[str], [["a"]], [[1]]),
        (tuple[int, ...], [[1, 2, 3]], [[1, "x"]]),
        (tuple[int, str], [[1, "a"]], [[1], [1, 2], ["a", 1]]),
        (set[str], [["a", "b"]], ["a"]),
        (dict, [{}, {"a": [1]}], [[], "a"]),
        (dict[str, float], [{"a": 1, "b": 2.5}], [{"a": "x"}]),
        (Mapping[str, Any], [{"a": object()}], [[]]),
        (pathlib.Path, ["data/x.csv"], [3, ["a"]]),
        (os.PathLike, ["x"], [1]),
        (Optional[int], [3], ["3"]),  # noqa: UP045 - the old spelling is what is tested
        (int | None, [3], ["3"]),
        (Union[int, str], [3, "3"], [1.5, [3]]),  # noqa: UP007
        (int | list[int], [3, [3]], [["3"]]),
        (Literal["fast", "slow"], ["fast"], ["medium", 1]),
        (Literal[1, 2, True], [1, 2, True], [3, "1", False]),
        (Annotated[int, "units"], [3], ["3"]),
        (UserId, [3], ["3"]),
        (datetime.date, [datetime.date(2026, 1, 1)], ["2026-01-01"]),
    ],
)
def test_what_each_annotation_accepts(annotation, good, bad):
    for value in good:
        assert fits(annotation, value), value
    for value in bad:
        assert not fits(annotation, value), value


@pytest.mark.parametrize(
    "annotation",
    [Any, object, typing.TypeVar("T"), pathlib.PurePath | Any, "NotImportable", type("Mine", (), {})],
)
def test_what_is_not_understood_accepts_everything(annotation):
    for value in (1, "x", [1], {"a": 1}, True):
        assert fits(annotation, value)


TASKS = """
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import toolkit

if TYPE_CHECKING:
    from somewhere_else import Model   # never importable: that param is not checked


def train(epochs: int, lr: float = 0.1, mode: Literal["fast", "slow"] = "fast",
          data: Path | None = None, model: Model | None = None, label: str = "",
          token: str = "", seen: str = ""):
    with open(os.path.join(seen, f"{epochs}-{lr}-{label}"), "w") as f:
        f.write("ran")
    return epochs


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(train, name="train")
"""

RECIPE = """
[recipe]
name = "typed"
plugins = ["tasks.py"]

[vars]
epochs = 3

[[task]]
name = "fit"
uses = "train"
params = {{ epochs = "${{vars.epochs}}", model = 5, seen = "{seen}" {extra} }}
matrix = {{ lr = [0.1, 1] }}
"""


def recipe_dir(tmp_path, extra="", files=None):
    seen = tmp_path / "seen"
    seen.mkdir(exist_ok=True)
    (tmp_path / "tasks.py").write_text(TASKS)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(seen=seen, extra=extra))
    return path, seen


def refused(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_a_wrong_override_is_refused_before_anything_runs(tmp_path, capsys):
    path, seen = recipe_dir(tmp_path)
    assert main(["run", str(path), "--output", str(tmp_path / "runs")]) == 0
    assert len(list(seen.iterdir())) == 2
    for command in ("validate", "plan", "run"):
        output = ["--output", str(tmp_path / "o")] if command == "run" else []
        err = refused(capsys, command, str(path), "--set", "vars.epochs=ten", *output)
        assert (
            "r.toml:12: task.fit.params.epochs: task 'train' takes epochs: int (an integer); got a string 'ten'"
            in err
        )
    assert len(list(seen.iterdir())) == 2  # nothing more ran
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "task.fit.params.mode=medium",
            "takes mode: Literal['fast', 'slow'] (one of 'fast', 'slow'); got a string 'medium'",
        ),
        ("task.fit.params.data=3", "takes data: Path | None (a path (a string)); got an integer 3"),
        ("task.fit.params.epochs=2.5", "takes epochs: int (an integer); got a float 2.5"),
        ("task.fit.params.epochs=true", "takes epochs: int (an integer); got a boolean true"),
        ("task.fit.params.label=[1]", "takes label: str (a string); got an array [1]"),
        (
            "task.fit.matrix.lr=[0.1, 'x']",
            "task.fit.matrix.lr[1]: task 'train' takes lr: float (a number); got a string 'x'",
        ),
        ("task.fit.matrix.epochs=[1, 'two']", "task.fit.matrix.epochs[1]: task 'train' takes epochs: int"),
        (
            "task.fit.matrix.include=[{lr = 0.5, label = 7}]",
            "matrix.include[0].label: task 'train' takes label: str",
        ),
    ],
)
def test_each_kind_of_bad_value(tmp_path, capsys, override, message):
    path, _ = recipe_dir(tmp_path)
    err = refused(capsys, "validate", str(path), "--set", override)
    assert message in err


def test_a_range_axis_is_integers(tmp_path, capsys):
    path, _ = recipe_dir(tmp_path)
    err = refused(capsys, "validate", str(path), "--set", "task.fit.matrix.label={ range = [0, 3] }")
    assert "task.fit.matrix.label.range: task 'train' takes label: str (a string); got an integer 0" in err
    assert main(["validate", str(path), "--set", "task.fit.matrix.epochs={ range = [1, 3] }"]) == 0


def test_a_param_that_is_one_matrix_value_takes_its_type(tmp_path, capsys):
    path, _ = recipe_dir(tmp_path)
    args = ["--set", "task.fit.params.epochs=${matrix.n}", "--set", "task.fit.matrix.n=[1, 'x']"]
    err = refused(capsys, "validate", str(path), *args)
    assert (
        "task.fit.matrix.n[1]: task 'train' takes epochs: int (an integer); got a string 'x' (from params.epochs)"
        in err
    )
    # rendered into a longer string, a matrix value makes a string
    args = ["--set", "task.fit.params.label=run-${matrix.lr}"]
    assert main(["validate", str(path), *args]) == 0
    err = refused(capsys, "validate", str(path), "--set", "task.fit.params.epochs=n${matrix.lr}")
    assert "takes epochs: int (an integer); got a string ''" in err


def test_values_from_file_sources(tmp_path, capsys):
    files = {"lrs.txt": "0.1\n0.5\nfast\n", "jobs.csv": "lr,epochs\n0.1,3\n0.2,many\n"}
    path, _ = recipe_dir(tmp_path, files=files)
    err = refused(capsys, "validate", str(path), "--set", "task.fit.matrix.lr={ lines = 'lrs.txt' }")
    # a lines file gives strings: lr is a float
    assert (
        "task.fit.matrix.lr[0]: task 'train' takes lr: float (a number); got a string '0.1' (from lrs.txt)"
        in err
    )
    err = refused(
        capsys, "validate", str(path), "--set", "task.fit.matrix={ include = { csv = 'jobs.csv' } }"
    )
    assert (
        "matrix.include[1].epochs: task 'train' takes epochs: int (an integer); got a string 'many' (from jobs.csv)"
        in err
    )


def test_a_secret_in_a_bad_value_is_not_shown(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOKEN", "hush-hush")
    path, _ = recipe_dir(tmp_path)
    err = refused(capsys, "validate", str(path), "--set", "task.fit.params.epochs=${secret.TOKEN}")
    assert "takes epochs: int (an integer); got a string '***'" in err
    assert "hush-hush" not in err


def test_the_built_in_shell_task_takes_typed_words(tmp_path, capsys):
    # cmd = "echo ${vars.n}" fills in the integer as a word of its own
    path = tmp_path / "r.toml"
    path.write_text(
        '[recipe]\nname = "w"\n[vars]\nn = 3\n[[task]]\nname = "t"\nuses = "shell"\nparams = { cmd = "echo ${vars.n}" }\n'
    )
    assert main(["validate", str(path)]) == 0
    err = refused(capsys, "validate", str(path), "--set", "task.t.params.timeout=soon")
    assert "task 'shell' takes timeout: float | None (a number); got a string 'soon'" in err
