"""Surroundings that cannot hold a run: one line naming the cause, exit 2, and no run
directory when nothing started (an output path that is a file, a read-only file system,
a ``latest`` that is a real directory, a run id from the environment that is a path)."""

from __future__ import annotations

import os

import pytest
from faults_helpers import marks, recipe_text, run_toolkit
from fs_helpers import read_only_dir


def one_error_line(res, *needles: str) -> str:
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("toolkit: error: "), err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


def entries(path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("make", "output", "needles"),
    [
        (lambda f: (f / "afile").write_text(""), "afile", ("afile is not a directory",)),
        (
            lambda f: (f / "o" / "r").parent.mkdir() or (f / "o" / "r").write_text(""),
            "o",
            ("o/r is not a directory",),
        ),
        (lambda f: (f / "o" / "r" / "latest").mkdir(parents=True), "o", ("o/r/latest is a directory",)),
    ],
    ids=["output-is-a-file", "recipe-dir-is-a-file", "latest-is-a-directory"],
)
def test_an_output_path_that_cannot_hold_a_run(folder, make, output, needles):
    (folder / "r.toml").write_text(recipe_text("r", marks(3, log="side")))
    make(folder)
    before = entries(folder)
    one_error_line(run_toolkit(folder, "run", "r.toml", "--output", output), *needles)
    assert entries(folder) == before  # nothing ran, nothing was made


def test_a_read_only_output_dir(folder):
    (folder / "r.toml").write_text(recipe_text("r", marks(3, log="side")))
    with read_only_dir(folder / "ro"):
        line = one_error_line(run_toolkit(folder, "run", "r.toml", "--output", "ro"), "ro/r")
        assert "read-only file system" in line or "permission denied" in line
        assert entries(folder / "ro") == []
    assert not (folder / "side").exists()


@pytest.mark.parametrize("run_id", ["../../../x", "/tmp/toolkit-x", "a/b", "..", ".hidden", "x" * 129])
def test_a_run_id_from_the_environment_is_one_plain_name(folder, run_id):
    (folder / "r.toml").write_text(recipe_text("r", marks(3, log="side")))
    res = run_toolkit(folder, "run", "r.toml", env={"TOOLKIT_RUN_ID": run_id})
    one_error_line(res, "invalid run id", "TOOLKIT_RUN_ID")
    assert entries(folder) == ["faults_tasks.py", "r.toml"]


def test_a_recipe_path_that_is_not_utf8_is_one_error(folder):
    """The manifest and ${recipe.dir} hold the recipe's path as text: a directory named
    with undecodable bytes is refused before anything is made (it was a traceback)."""
    odd = folder / os.fsdecode(b"d\xff")
    odd.mkdir()
    (odd / "faults_tasks.py").write_text((folder / "faults_tasks.py").read_text())
    (odd / "r.toml").write_text(recipe_text("r", marks(3, log="side")))
    for command in ("run", "plan", "validate"):
        res = run_toolkit(folder, command, os.path.join(os.fsdecode(b"d\xff"), "r.toml"))
        one_error_line(res, "d\\xff/r.toml", "not valid UTF-8")
    assert entries(odd) == ["faults_tasks.py", "r.toml"]


def test_an_output_dir_that_is_not_utf8_holds_the_run(folder):
    """Only text toolkit writes must be UTF-8: an output directory with undecodable bytes
    in its name is a directory like any other (the lock's note of the command line was a
    traceback)."""
    (folder / "r.toml").write_text(recipe_text("r", marks(3, log="side")))
    out = os.fsdecode(b"o\xff")
    res = run_toolkit(folder, "run", "r.toml", "-q", "--output", out)
    assert res.returncode == 0 and b"Traceback" not in res.stderr, res.stderr
    assert sorted((folder / "side").read_text().split()) == ["0", "1", "2"]
    res = run_toolkit(folder, "runs", "--output", out)
    assert res.returncode == 0 and b"succeeded" in res.stdout, res.stderr
