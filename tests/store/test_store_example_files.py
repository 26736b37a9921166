"""recipes/files works as its README says, with its commands as written (from the
repository's root): first run, nothing to do, one file edited."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from store_helpers import cli

ROOT = Path(__file__).resolve().parents[2]


def outputs(folder: Path) -> dict[str, int]:
    """mtime_ns of every count file: a file rewritten is an instance that ran."""
    return {p.name: p.stat().st_mtime_ns for p in (folder / "out" / "data").glob("*.count")}


def test_the_files_example_runs_as_its_readme_says(tmp_path):
    root = tmp_path / "repo"  # the README's commands run from the repository's root
    folder = root / "recipes" / "files"
    shutil.copytree(ROOT / "recipes" / "files", folder, ignore=shutil.ignore_patterns("runs", "out"))
    for path in (folder / "data").iterdir():  # shipped files: not written a moment ago
        os.utime(path, (time.time() - 60, time.time() - 60))
    readme = (ROOT / "recipes" / "files" / "README.md").read_text()
    assert "1 to run, 4 cached (1 file changed)" in readme and "(6 from the cache)" in readme
    recipe = "recipes/files/files.toml"
    assert f"$ toolkit run {recipe} -q" in readme and f"$ toolkit plan {recipe}" in readme

    first = cli("run", recipe, "-q", cwd=root)
    assert first.returncode == 0, first.stdout + first.stderr
    before = outputs(folder)
    assert len(before) == 5

    second = cli("run", recipe, "-q", cwd=root)
    assert second.returncode == 0 and "(6 from the cache)" in second.stdout
    assert outputs(folder) == before, "an instance ran again"

    with open(folder / "data" / "melville.txt", "a") as f:
        f.write("Some years ago, never mind how long precisely.\n")
    plan = cli("plan", recipe, cwd=root)
    assert plan.returncode == 0, plan.stderr
    assert "5 instances: 1 to run, 4 cached (1 file changed)" in plan.stdout
    assert "run: file changed: data/melville.txt" in plan.stdout
    assert "1 to run, 0 cached (1 upstream changed)" in plan.stdout

    third = cli("run", recipe, "-q", cwd=root)
    assert third.returncode == 0 and "(4 from the cache)" in third.stdout
    after = outputs(folder)
    assert [name for name in after if after[name] != before[name]] == ["melville.txt.count"]
    latest = root / "runs" / "files" / "latest" / "results.jsonl"
    records = {r["instance"]: r for r in map(json.loads, latest.read_text().splitlines())}
    assert records["total"]["cached"] is None and records["total"]["value"]["words"] > 0
