"""docs/recipe.md stays in step with the loader: every key documented, examples valid."""

from __future__ import annotations

import os
import re
import tomllib

import pytest

from toolkit.recipe import keys as K
from toolkit.recipe import read_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "recipe.md")


def doc_text() -> str:
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def section(title: str) -> str:
    text = doc_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize(
    ("title", "keys"),
    [
        ("`[recipe]`", K.RECIPE),
        ("`[run]`", K.RUN),
        ("`[output]`", K.OUTPUT),
        ("`[notify]`", K.NOTIFY),
        ("`[schedule]`", K.SCHEDULE),
        ("`[[task]]`", K.TASK),
    ],
)
def test_every_key_has_a_row(title, keys):
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section(title), re.M))
    assert rows == set(keys)


def test_every_table_has_a_section():
    text = doc_text()
    for table in K.TOP:
        assert f"## `[{table}" in text or f"## `[[{table}" in text, table


def test_toml_examples_parse_and_the_complete_one_validates(tmp_path, monkeypatch):
    blocks = re.findall(r"```toml\n(.*?)```", doc_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        text = "\n".join(line[2:] if line.startswith("  ") else line for line in block.splitlines())
        if text.lstrip().startswith(("matrix.", "[[rule]]")):
            continue  # fragments of a [[task]] or of .taplo.toml
        tomllib.loads(text)
    complete = blocks[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pi_tasks.py").write_text("")
    (tmp_path / "base.toml").write_text("")
    (tmp_path / "pi.toml").write_text(complete)
    recipe = read_recipe(tmp_path / "pi.toml")
    assert recipe.task("estimate").count() == 16


def test_the_fruit_example_gives_five_instances():
    block = section("Matrix").split("```toml\n")[2].split("```")[0]
    table = tomllib.loads('[recipe]\nname = "m"\n[[task]]\nname = "t"\nuses = "shell"\n' + block)
    spec = read_recipe(table).task("t")
    assert spec.count() == 4
    ids = [spec.instance_id(c) for _, c in spec.iter_combos()]
    assert ids[-1] == "t[fruit=banana]"
    assert "t[animal=cat,color=pink,fruit=apple,shape=circle]" in ids
