"""``toolkit runs`` and ``toolkit show`` with damaged run directories: a manifest cut
short, edited by hand or holding fields of the wrong type is listed as ``damaged`` with
the reason; nothing is hidden, nothing crashes."""

from __future__ import annotations

import os
import shutil
import tomllib

import pytest
import tomli_w

from toolkit.cli import main
from toolkit.store.history import check_manifest

RECIPE = """
[recipe]
name = "r"
plugins = ["toolkit.conformance"]
[run]
executor = "process"
[[task]]
name = "sq"
uses = "conformance.square"
matrix = { x = [1, 2, 3] }
"""


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """A real run of a small recipe, copied by each test and then damaged."""
    folder = tmp_path_factory.mktemp("damaged")
    recipe = folder / "r.toml"
    recipe.write_text(RECIPE)
    assert main(["run", str(recipe), "--output", str(folder / "runs"), "-q", "--progress", "off"]) == 0
    (run,) = [p for p in (folder / "runs" / "r").iterdir() if p.name != "latest"]
    return run


def copies(one_run, tmp_path, n):
    base = tmp_path / "runs" / "r"
    base.mkdir(parents=True)
    out = []
    for i in range(n):
        target = base / f"20260101-00000{i}-{i:04x}"
        shutil.copytree(one_run, target)
        out.append(target)
    return out


def lines(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == "" and "Traceback" not in out
    return out.splitlines()


def setkey(path, key, value):
    """Give the manifest's ``key`` a value of the wrong type (``counts.x`` for a count)."""
    manifest = tomllib.loads((path / "manifest.toml").read_text())
    table = manifest
    *parents, last = key.split(".")
    for part in parents:
        table = table[part]
    table[last] = value
    (path / "manifest.toml").write_text(tomli_w.dumps(manifest))


def write(text):
    return lambda p: (p / "manifest.toml").write_bytes(text)


DAMAGES = {
    "torn": (write(b'status = "succ\n'), "manifest.toml is not valid TOML"),
    "empty": (write(b""), "manifest.toml: it has no status"),
    "binary": (write(b"\xff\xfe\x00garbage"), "manifest.toml is not UTF-8 text"),
    "status": (lambda p: setkey(p, "status", 5), "manifest.toml: status is an integer"),
    "started": (lambda p: setkey(p, "started", 12), "manifest.toml: started is an integer"),
    "counts": (lambda p: setkey(p, "counts", "lots"), "manifest.toml: counts is a string"),
    "count": (lambda p: setkey(p, "counts.ok", "3"), "counts holds values that are not counts"),
    "negative": (lambda p: setkey(p, "counts.ok", -3), "counts holds values that are not counts"),
    "resumed": (lambda p: setkey(p, "resumed", "yesterday"), "resumed is a string"),
    "plugins": (lambda p: setkey(p, "plugins", ["a"]), "plugins is an array"),
    "duration": (lambda p: setkey(p, "duration_s", "long"), "duration_s is a string"),
    "overrides": (lambda p: setkey(p, "overrides", [1]), "overrides holds values that are not strings"),
    "pid": (lambda p: setkey(p, "pid", True), "pid is a boolean"),
}


def test_each_damaged_run_is_listed_as_damaged_with_its_reason(one_run, tmp_path, capsys):
    runs = copies(one_run, tmp_path, len(DAMAGES) + 1)
    for path, (damage, _) in zip(runs, DAMAGES.values(), strict=False):
        damage(path)
    out = lines(capsys, "runs", "--output", str(tmp_path / "runs"))
    assert len(out) == 1 + len(runs)  # the header, then every run: none hidden
    rows = {line.split()[0]: line for line in out[1:]}
    for path, (_, reason) in zip(runs, DAMAGES.values(), strict=False):
        row = rows[path.name]
        assert " damaged " in row and reason in row, (path.name, row)
    intact = rows[runs[-1].name]
    assert " succeeded " in intact


@pytest.mark.parametrize("name", list(DAMAGES))
def test_show_says_a_run_is_damaged_and_shows_what_it_can(one_run, tmp_path, capsys, name):
    (path,) = copies(one_run, tmp_path, 1)
    damage, reason = DAMAGES[name]
    damage(path)
    out = lines(capsys, "show", str(path))
    assert any(line.startswith("status") and "damaged" in line for line in out)
    assert any(reason in line for line in out)
    assert any(line.startswith("directory") for line in out)


def test_records_edited_by_hand_do_not_crash_show(one_run, tmp_path, capsys):
    (path,) = copies(one_run, tmp_path, 1)
    with open(path / "results.jsonl", "a") as f:
        f.write('[1, 2]\n{"key": [1], "status": "failed"}\n')
        f.write('{"key": "k1", "status": ["failed"], "task": [1]}\n')
        f.write('{"key": "k2", "status": "skipped", "task": {"a": 1}, "error": "x"}\n')
        f.write('{"key": "k3", "status": "failed", "instance": {"a": 1}, "attempts": "many", "error": [1]}\n')
    out = lines(capsys, "show", str(path))
    assert "failures (1):" in out
    assert any(line.startswith("skipped: 1 of {'a': 1}") for line in out)
    out = lines(capsys, "runs", "--output", str(tmp_path / "runs"))
    assert len(out) == 2


def test_a_directory_that_is_no_run_is_still_an_error(tmp_path, capsys):
    assert main(["show", "nothing", "--output", str(tmp_path)]) == 2
    assert "toolkit: error: no run 'nothing'" in capsys.readouterr().err


def test_check_manifest_keeps_the_good_fields():
    good, problems = check_manifest(
        {"status": "failed", "counts": {"ok": 2, "failed": "1"}, "pid": "x", "recipe": "r"}
    )
    assert good == {"status": "failed", "counts": {"ok": 2}, "recipe": "r"}
    assert problems == ["counts holds values that are not counts", "pid is a string"]
    assert check_manifest([1]) == ({}, ["not a table"])


@pytest.mark.skipif(not os.path.isdir("/proc/1"), reason="needs /proc")
def test_an_output_dir_toolkit_may_not_read(capsys):
    # /proc: directories whose entries cannot be looked at
    assert lines(capsys, "runs", "--output", "/proc") == ["no runs in /proc"]
