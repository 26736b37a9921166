"""A worker imports what it needs and no more: under spawn each process of the ``process``
executor is a fresh interpreter, and what it imports is most of what it costs. Real
processes, checked through ``sys.modules`` (no timings)."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: what a worker has no use for: attrs (the recipe model, the executor interface),
#: pluggy (hooks run in the main process), the recipe loader and its checks, OpenSSL
NOT_IN_A_WORKER = (
    "attr",
    "attrs",
    "pluggy",
    "toolkit.hookspecs",
    "toolkit.execution.api",
    "toolkit.recipe.model",
    "toolkit.recipe.loader",
    "toolkit.recipe.check",
    "tomllib",
    "difflib",
    "_hashlib",
    "argparse",  # the command line (a spawned worker runs toolkit.__main__, not the script)
    "pathlib",  # (with urllib.parse, ipaddress): ~10 % of a spawned worker's start
)

TASKS = """
import sys

import toolkit

WATCH = {watch!r}


def imported(i: int = 0, word: str = ""):
    watch = WATCH
    if "coverage" in sys.modules:  # under coverage (CI): it reads its config with tomllib, ...
        watch = [n for n in WATCH if n.startswith(("attr", "pluggy", "toolkit."))]
    return sorted(name for name in watch if name in sys.modules)


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(imported, name="probe.imported")
"""


def run_cli(tmp_path, recipe: str, files: dict[str, str], command: list[str] | None = None) -> list[dict]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "recipe.toml").write_text(recipe)
    out = tmp_path / "runs"
    proc = subprocess.run(
        [
            *(command or [sys.executable, "-m", "toolkit"]),
            "run",
            "recipe.toml",
            "-q",
            "--progress",
            "off",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (results,) = out.glob("*/latest/results.jsonl")
    return [json.loads(line) for line in results.read_text().splitlines()]


#: ``python -m toolkit``, and the console script (a spawned worker runs the main module
#: again: the script's would be the whole command line)
COMMANDS = {
    "module": [sys.executable, "-m", "toolkit"],
    "script": [str(Path(sys.executable).parent / "toolkit")],
}


@pytest.mark.skipif("spawn" not in multiprocessing.get_all_start_methods(), reason="no spawn")
@pytest.mark.parametrize("via", sorted(COMMANDS))
def test_a_spawned_worker_imports_no_attrs_pluggy_or_recipe_loader(tmp_path, via):
    """A process of the ``process`` executor under spawn. (Pool workers import the
    executor's module, and attrs with it, once per worker for the whole run.)"""
    if not Path(COMMANDS[via][0]).exists():
        pytest.skip("no toolkit console script beside this interpreter")
    recipe = textwrap.dedent(
        """
        [recipe]
        name = "imports"
        plugins = ["tasks.py"]
        [run]
        executor = "process"
        workers = 2
        start_method = "spawn"
        [[task]]
        name = "probe"
        uses = "probe.imported"
        params = { word = "w-${matrix.i}" }
        matrix = { i = { range = [0, 2] } }
        """
    )
    # what any process of this interpreter has at start (an editable install's finder
    # imports pathlib in every process) says nothing about the worker
    bare = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    watch = [name for name in NOT_IN_A_WORKER if name not in bare]
    records = run_cli(tmp_path, recipe, {"tasks.py": TASKS.format(watch=watch)}, COMMANDS[via])
    assert [r["status"] for r in records] == ["ok", "ok"]
    for record in records:
        assert record["value"] == [], record


def test_the_recipe_model_imports_no_loader():
    """``toolkit.recipe`` names its loader and checks lazily: the model alone (what a
    recipe object needs) imports none of them."""
    code = (
        "import sys, toolkit.recipe.model, toolkit.recipe.instances\n"
        "watch = ['toolkit.recipe.loader', 'toolkit.recipe.check', 'pluggy']\n"
        "if 'coverage' not in sys.modules:\n"  # under coverage (CI), which imports tomllib
        "    watch += ['tomllib', 'difflib']\n"
        "print(sorted(m for m in watch if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_recipe_package_still_names_everything():
    import toolkit.recipe
    from toolkit.recipe import OutputSettings, Recipe, RunSettings, TaskSpec, check_recipe, read_recipe
    from toolkit.recipe.check import check_recipe as check
    from toolkit.recipe.loader import read_recipe as read
    from toolkit.recipe.model import Recipe as RecipeClass

    assert (read_recipe, check_recipe, Recipe) == (read, check, RecipeClass)
    model = toolkit.recipe.model
    assert (OutputSettings, RunSettings, TaskSpec) == (
        model.OutputSettings,
        model.RunSettings,
        model.TaskSpec,
    )
    assert set(toolkit.recipe.__all__) <= set(dir(toolkit.recipe))
    with pytest.raises(AttributeError):
        toolkit.recipe.nothing  # noqa: B018


MARKED = """
import json
import sys

import toolkit


@toolkit.hookimpl(tryfirst=True)
def toolkit_run_start(run):
    pass


@toolkit.hookimpl
def toolkit_task_start(instance):
    pass


@toolkit.hookimpl(specname="toolkit_task_finish", wrapper=True)
def finish(instance, record):
    return (yield)


class Watcher:
    @toolkit.hookimpl
    def toolkit_run_finish(self, run, summary):
        pass


out = {
    "pluggy before": "pluggy" in sys.modules,
    "marked before": [hasattr(f, "toolkit_impl") for f in (toolkit_run_start, finish)],
}

import pluggy

from toolkit import hookspecs
from toolkit.manager import new_plugin_manager


@toolkit.hookimpl(trylast=True)
def toolkit_run_finish(run, summary):
    pass


def by_pluggy(run, summary):
    pass


pluggy.HookimplMarker("toolkit")(trylast=True)(by_pluggy)
out["marked after"] = toolkit_run_finish.toolkit_impl == by_pluggy.toolkit_impl
del by_pluggy

pm = new_plugin_manager()
pm.add_hookspecs(hookspecs)
pm.register(sys.modules[__name__], "marked")
out["hooks"] = sorted(h.name for h in pm.get_hookcallers(sys.modules[__name__]))
out["tryfirst"] = pm.hook.toolkit_run_start.get_hookimpls()[0].tryfirst
out["wrapper"] = pm.hook.toolkit_task_finish.get_hookimpls()[0].wrapper
pm.register(Watcher(), "watcher")  # an object whose methods were marked before pluggy
out["object"] = [i.plugin_name for i in pm.hook.toolkit_run_finish.get_hookimpls()]
print(json.dumps(out))
"""


def test_hookimpl_marks_without_pluggy_and_the_plugin_manager_registers_it(tmp_path):
    """``toolkit.hookimpl`` in a process without pluggy (a worker importing a plugin
    file) notes the options only; the toolkit's plugin manager registers such functions
    with those options; once pluggy is imported, pluggy's marker does the marking."""
    (tmp_path / "marked.py").write_text(MARKED)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "marked.py")], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {
        "pluggy before": False,
        "marked before": [False, False],
        "marked after": True,
        "hooks": ["toolkit_run_finish", "toolkit_run_start", "toolkit_task_finish", "toolkit_task_start"],
        "tryfirst": True,
        "wrapper": True,
        "object": ["marked", "watcher"],
    }
