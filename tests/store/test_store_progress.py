"""What a run prints: plain lines in a pipe, the rich live view on a terminal, -q."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

from store_helpers import cli

from toolkit.progress import PlainReporter, make_reporter

RECIPE = """
[[task]]
name = "sq"
uses = "store.shaped"
matrix = {{ i = {{ range = [1, {n}] }} }}
[[task]]
name = "again"
uses = "store.shaped"
needs = ["sq"]
params = {{ i = 2 }}
"""


def plain_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    }
    env["TOOLKIT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def run_cli(recipe, tmp_path, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", str(recipe), "--output", str(tmp_path / "runs"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=plain_env(),
    )
    return proc


def test_output_to_a_pipe_has_no_escape_codes(tmp_path, write_recipe):
    recipe = write_recipe(RECIPE.format(n=12))
    proc = run_cli(recipe, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x1b" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run ") and "executor" in lines[1]
    assert lines[-3].startswith("succeeded: 12 ok in ")
    assert lines[-2].startswith("results: ")
    # the summary says where the report is, and it is there
    assert lines[-1] == f"report: {lines[-2].removeprefix('results: ')}/report.html"
    assert (tmp_path / lines[-1].removeprefix("report: ")).is_file()


def test_progress_on_in_a_pipe_stays_sane(tmp_path, write_recipe):
    recipe = write_recipe(RECIPE.format(n=6), run="keep_going = true")
    proc = run_cli(recipe, tmp_path, "--progress", "on", "--set", "task.sq.matrix.i.range=[0, 6]")
    assert proc.returncode == 1, proc.stderr  # shaped(0) fails; `again` is skipped
    assert "\x1b" not in proc.stdout  # rich knows a pipe is no terminal
    assert "failed: 5 ok, 1 failed, 1 skipped in " in proc.stdout
    assert "results: " in proc.stdout and "/report.html\n" in proc.stdout
    assert proc.stdout.count("\n") < 40


def test_quiet_prints_only_the_summary(tmp_path, write_recipe):
    recipe = write_recipe(RECIPE.format(n=4))
    proc = run_cli(recipe, tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("succeeded: 4 ok in ") and lines[1].startswith("results: ")
    assert lines[2].startswith("report: ") and lines[2].endswith("/report.html")


def test_help_never_imports_rich():
    code = (
        "import sys, contextlib, io\n"
        "from toolkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help']); main(['runs', '--help']); main(['run', '--help'])\n"
        "assert 'rich' not in sys.modules, sorted(m for m in sys.modules if m.startswith('rich'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert cli("--help").returncode == 0


class FakeTty(io.StringIO):
    def isatty(self):
        return True


def test_the_live_view_on_a_terminal_starts_no_thread():
    from rich.console import Console

    from toolkit.live import LiveReporter

    stream = FakeTty()
    assert type(make_reporter("auto", stream=stream)).__name__ == "LiveReporter"
    assert isinstance(make_reporter("auto", stream=io.StringIO()), PlainReporter)
    assert isinstance(make_reporter("auto", quiet=True, stream=stream), PlainReporter)
    assert isinstance(make_reporter("off", stream=stream), PlainReporter)

    console = Console(file=stream, force_terminal=True, width=120, color_system="standard")
    live = LiveReporter(console=console)
    threads = threading.active_count()
    live.start("runs/r/1", 12, "pool", "auto: many", 2, tasks={"a": 10, "b": 2}, stages=[["a"], ["b"]])
    assert threading.active_count() == threads
    live.records("a", 7, ["failed"])
    live.tick()
    live.message("interrupted: waiting")
    live.records("a", 3, [])
    live.records("b", 2, ["skipped", "skipped"])
    live.tick()
    assert threading.active_count() == threads
    live.finish("failed", {"ok": 9, "failed": 1, "skipped": 2}, 0, "runs/r/1", 1.5)
    live.close()  # twice is fine
    text = stream.getvalue()
    assert "\x1b[" in text  # it is a live view
    assert "1. a" in text and "2. b" in text and "interrupted: waiting" in text
    assert "failed\x1b[0m: 9 ok, 1 failed, 2 skipped in 1.50s" in text
    assert "results: runs/r/1" in text


def test_the_live_view_of_many_tasks_keeps_to_the_overall_bar():
    from rich.console import Console

    from toolkit.live import MAX_ROWS, LiveReporter

    stream = FakeTty()
    console = Console(file=stream, force_terminal=True, width=120, color_system="standard")
    live = LiveReporter(console=console)
    names = [f"t{i}" for i in range(MAX_ROWS * 5)]
    live.start("runs/r/1", len(names), "pool", "auto", 2, tasks=dict.fromkeys(names, 1), stages=[names])
    for name in names:
        live.records(name, 1, ["failed"] if name == "t7" else [])
        live.tick()
    live.finish("failed", {"ok": len(names) - 1, "failed": 1}, 0, "runs/r/1", 1.0)
    text = stream.getvalue()
    assert "1. t3" not in text  # no row per task
    assert "1 failed" in text  # the overall bar counts what is not ok
    table = text[text.rindex("task") :]  # the counts per task at the end: the one not ok
    assert "t7" in table and "t8" not in table


def test_plain_reporter_lines():
    stream = io.StringIO()
    rep = PlainReporter(stream, every=0.0)
    rep.start("runs/r/1", 4, "pool", "auto", 2, tasks={"a": 3, "b": 1})
    rep.records("a", 3, ["failed"])
    rep.tick()
    rep.records("b", 1, ["skipped"])
    rep.finish("failed", {"ok": 2, "failed": 1, "skipped": 1}, 0, "runs/r/1", 0.5)
    text = stream.getvalue()
    assert "  a: 1 failed" in text and "  a: 3/3 done (2 ok, 1 failed)" in text
    assert "3/4 done, 1 not ok" in text
    assert text.endswith("failed: 2 ok, 1 failed, 1 skipped in 0.50s\nresults: runs/r/1\n")
    quiet = io.StringIO()
    rep = PlainReporter(quiet, quiet=True, every=0.0)
    rep.start("runs/r/1", 1, "pool", "auto", 2)
    rep.records("a", 1, ["failed"])
    rep.tick()
    rep.finish("failed", {"failed": 1}, 0, "runs/r/1", 0.5)
    assert quiet.getvalue().splitlines() == ["failed: 1 failed in 0.50s", "results: runs/r/1"]
