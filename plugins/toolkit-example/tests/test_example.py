"""The example plugin, tested as its users would use it: installed, through toolkit."""

from __future__ import annotations

import pytest

from toolkit.cli import main
from toolkit.conformance import ExecutorConformance
from toolkit.testing import RunRecipe

RECIPE = """
[recipe]
name = "powers"
[run]
executor = "{executor}"
workers = 2
[output]
formats = ["jsonl", "markdown"]
[output.markdown]
columns = {columns}
title = "Powers"
[[task]]
name = "p"
uses = "example.power"
params = {{ exp = 3 }}
matrix = {{ base = {{ range = [0, 5] }} }}
"""


def recipe(executor: str = "pool", columns: str = '["instance", "value"]') -> str:
    return RECIPE.format(executor=executor, columns=columns)


def test_the_task_and_the_sink_with_its_options(run_recipe: RunRecipe) -> None:
    res = run_recipe(recipe())
    assert res.exit_code == 0, res.stderr
    assert sorted(r["value"] for r in res.records) == [0, 1, 8, 27, 64]
    assert res.run_dir is not None
    table = (res.run_dir / "results.md").read_text().splitlines()
    assert table[:4] == ["# Powers", "", "| instance | value |", "|---|---|"]
    assert sorted(table[4:]) == sorted(f"| p[base={b}] | {b**3} |" for b in range(5))


def test_the_sink_appends_on_resume(run_recipe: RunRecipe) -> None:
    first = run_recipe(recipe())
    assert first.run_dir is not None
    (first.run_dir / "results.md").write_text("kept\n")
    again = run_recipe(recipe(), "--resume", "--output", str(first.output))
    assert again.exit_code == 0, again.stderr
    assert (first.run_dir / "results.md").read_text() == "kept\n"  # nothing left to run: unchanged


def test_bad_sink_options_are_a_recipe_error_with_the_line_of_the_key(run_recipe: RunRecipe) -> None:
    res = run_recipe(recipe(columns='["instance", "colour"]'), command="validate")
    assert res.exit_code == 2
    assert "recipe.toml:10: output.markdown: columns: 'colour' is not a record field" in res.stderr


class TestChildren(ExecutorConformance):
    """The executor made of BatchProcess children passes the suite every executor passes."""

    executor = "children"


def test_the_command(run_recipe: RunRecipe, capsys: pytest.CaptureFixture[str]) -> None:
    res = run_recipe(recipe(executor="children"))
    assert res.exit_code == 0, res.stderr
    assert main(["markdown", str(res.run_dir), "--columns", "instance,status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["| instance | status |", "|---|---|"]
    assert sorted(out[2:]) == sorted(f"| p[base={b}] | ok |" for b in range(5))
    assert main(["markdown", "nowhere"]) == 2
    assert "nowhere: not a run directory" in capsys.readouterr().err


def test_the_plugin_is_listed_by_its_entry_point_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "-v"]) == 0
    out = capsys.readouterr().out
    assert "example" in out and "distribution: toolkit-example 0.1.0" in out
    assert "tasks: example.power" in out and "sinks: markdown" in out and "commands: markdown" in out
