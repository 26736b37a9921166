"""``toolkit init --plugin NAME`` writes a distribution whose tests pass as written.

CI installs it with pip (the plugins session); here it is "installed" the way pip lays
a distribution out: the package and a ``.dist-info`` with its entry points, on the path."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from toolkit.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_init_plugin_writes_a_distribution_whose_tests_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--plugin", "tiny-one"]) == 0
    out = capsys.readouterr().out
    dist = tmp_path / "toolkit-tiny-one"
    assert "next: pip install -e 'toolkit-tiny-one[test]' && pytest toolkit-tiny-one/tests" in out
    pyproject = tomllib.loads((dist / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "toolkit-tiny-one"
    assert pyproject["project"]["entry-points"]["toolkit.plugins"] == {"tiny-one": "toolkit_tiny_one"}
    assert (dist / "toolkit_tiny_one" / "py.typed").exists()

    site = tmp_path / "site"
    info = site / "toolkit_tiny_one-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toolkit-tiny-one\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[toolkit.plugins]\ntiny-one = toolkit_tiny_one\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(dist), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(dist / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=dist,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_init_plugin_refuses_a_bad_name_and_existing_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--plugin", "9lives"]) == 2
    assert "plugin name '9lives': use a letter" in capsys.readouterr().err
    assert main(["init", "--plugin", "ok", "here"]) == 0
    assert main(["init", "--plugin", "ok", "here"]) == 2
    assert "already exist" in capsys.readouterr().err


def test_the_readme_command_installs_what_the_tests_need(tmp_path, capsys, monkeypatch):
    """README's line, word for word, in the venv of its first command: the extra it
    installs brings pytest, and it is what `init --plugin` says to do next."""
    line = next(ln for ln in README.splitlines() if "init --plugin hello" in ln)
    steps = [shlex.split(step) for step in line.split("&&")]
    assert [step[0] for step in steps] == [".venv/bin/toolkit", ".venv/bin/pip", ".venv/bin/pytest"]
    monkeypatch.chdir(tmp_path)
    assert main(steps[0][1:]) == 0
    install = steps[1][steps[1].index("-e") + 1]
    folder, extra = re.fullmatch(r"(.+)\[(\w+)\]", install).groups()
    pyproject = tomllib.loads((tmp_path / folder / "pyproject.toml").read_text())
    assert any(dep.startswith("pytest") for dep in pyproject["project"]["optional-dependencies"][extra])
    assert (tmp_path / steps[2][1]).is_dir()
    nxt = capsys.readouterr().out.splitlines()[-1]
    assert nxt == f"next: pip install -e '{install}' && pytest {steps[2][1]}"
