"""Case 9: the report and the ui. (a) ``toolkit report`` of a real 100,000-instance run in a
fresh process: time, peak memory, file size, and (when Selenium and Chromium are here)
the time a headless browser takes to open it; (b) what writing the report adds to case 1
end to end (``toolkit run`` with the built-in report plugin against ``-p no:builtin.report``,
interleaved); (c) ``toolkit ui``'s run list over 1,000 run directories, cold and warm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import HERE, CaseResult, Config, median, num, ratio, spread, toolkit_run, write_recipe

KEY = "9"
TITLE = "report and ui: 100k-instance report, report cost in case 1, ui run list of 1,000 runs"

RECIPE = """
[run]
executor = "pool"
workers = 2
start_method = "fork"
[[task]]
name = "sq"
uses = "bench.square"
matrix = {{ x = {{ range = [0, {n}] }} }}
"""


def _report(run_dir: Path) -> dict:
    """``toolkit report RUN`` in a fresh process: wall time and peak memory."""
    launch = run_dir.parent / "launch-report.json"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / "launch.py"), "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "TOOLKIT_BENCH_LAUNCH": str(launch)},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"toolkit report failed: {proc.stderr[-2000:]}")
    stats = json.loads(launch.read_text())
    return {
        "wall_s": wall,
        "maxrss_mib": stats.get("maxrss_mib"),
        "size": (run_dir / "report.html").stat().st_size,
    }


def _browser_open_s(page: Path) -> float | None:
    """Seconds from navigation to the report drawn, in headless Chromium; None without one."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        return None
    import tempfile

    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1300,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get("about:blank")
        t0 = time.perf_counter()
        driver.get(page.as_uri())
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.body.dataset.ready === '1'")
        )
        return time.perf_counter() - t0
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_report(run_dir: Path, timeout: float = 120) -> float:
    """Seconds until report.html is the final report (a background writer may be at it)."""
    from toolkit.report.after_run import is_pending

    t0 = time.perf_counter()
    page = run_dir / "report.html"
    while time.perf_counter() - t0 < timeout:
        if page.exists() and not is_pending(page):
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise RuntimeError(f"no report in {run_dir} after {timeout}s")


def _run_list(cfg: Config, n_runs: int, template: Path) -> dict:
    """The ui's run list over ``n_runs`` run directories made from ``template``."""
    from toolkit.ui.server import make_server, serve_in_thread

    out = cfg.work / "ui-runs"
    shutil.rmtree(out, ignore_errors=True)
    manifest = (template / "manifest.toml").read_text()
    rid = template.name
    for i in range(n_runs):
        recipe = f"recipe-{i % 10}"
        run_id = f"2026{(i // 1000) % 10:02d}01-{i % 1000:06d}-{i % 65536:04x}"
        d = out / recipe / run_id
        (d / "logs").mkdir(parents=True)
        (d / "manifest.toml").write_text(
            manifest.replace(rid, run_id).replace('recipe = "', f'recipe = "{recipe}', 1)
        )
        (d / "results.jsonl").write_text("")
    server = make_server(str(out), None, "127.0.0.1", 0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_port}/api/runs?token={server.app.token}"
    try:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as answer:
                data = json.loads(answer.read())
            times.append(time.perf_counter() - t0)
        assert len(data["runs"]) == n_runs, len(data["runs"])
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(out, ignore_errors=True)
    return {"cold_s": times[0], "warm_s": median(times[1:])}


def run(cfg: Config) -> CaseResult:
    n_report = 2_000 if cfg.quick else 100_000
    n_case1 = 2_000 if cfg.quick else 200_000
    n_runs = 50 if cfg.quick else 1_000
    out = CaseResult(KEY, f"{TITLE} (report N = {n_report:,}, case 1 N = {n_case1:,}, {n_runs:,} runs)")
    out.headers = ["what", "median", "range", "goal"]

    # (a) the report of a 100,000-instance run
    recipe = write_recipe(cfg, "bench-report", RECIPE.format(n=n_report))
    made = toolkit_run(cfg, recipe, "-p", "no:builtin.report")
    run_dir = Path(made["run_dir"])
    reports = [_report(run_dir) for _ in range(cfg.reps)]
    wall = median([r["wall_s"] for r in reports])
    rss = median([r["maxrss_mib"] for r in reports])
    size = reports[-1]["size"] / 1e6
    opened = None if cfg.quick else _browser_open_s(run_dir / "report.html")
    out.rows.append(
        [
            f"toolkit report, {n_report:,} instances: s",
            f"{wall:.2f}",
            spread([r["wall_s"] for r in reports]),
            "< 2",
        ]
    )
    out.rows.append(
        ["  peak memory MiB", num(rss, ".0f"), spread([r["maxrss_mib"] for r in reports], ".0f"), "< 200"]
    )
    out.rows.append(["  report.html MB", f"{size:.2f}", "", "< 5"])
    out.rows.append(
        ["  opened in headless Chromium: s", "n/a" if opened is None else f"{opened:.2f}", "", "< 2"]
    )
    out.target(f"report of {n_report:,} instances: time", wall, "< 2 s", wall < 2.0, f"{wall:.2f} s")
    out.target(
        f"report of {n_report:,} instances: peak memory", rss, "< 200 MiB", rss < 200, f"{rss:.0f} MiB"
    )
    out.target(f"report of {n_report:,} instances: size", size, "< 5 MB", size < 5, f"{size:.2f} MB")
    if opened is not None:
        out.target(
            "report of 100,000 instances: opens in a browser",
            opened,
            "< 2 s",
            opened < 2.0,
            f"{opened:.2f} s",
        )
    shutil.rmtree(run_dir.parent, ignore_errors=True)

    # (b) case 1 with and without the report, interleaved
    recipe = write_recipe(cfg, "bench-tiny-report", RECIPE.format(n=n_case1))
    with_report, without, ready = [], [], []
    for _ in range(cfg.reps):
        res = toolkit_run(cfg, recipe, "-p", "no:builtin.report")
        without.append(res["e2e_s"])
        shutil.rmtree(res["run_dir"], ignore_errors=True)
        res = toolkit_run(cfg, recipe)
        with_report.append(res["e2e_s"])
        ready.append(res["e2e_s"] + _wait_report(Path(res["run_dir"])))  # outside the timing
        shutil.rmtree(res["run_dir"], ignore_errors=True)
    cost = ratio(median(with_report), median(without))
    out.rows.append(
        ["case 1 e2e without the report: s", f"{median(without):.3f}", spread(without, ".3f"), ""]
    )
    out.rows.append(
        ["case 1 e2e with the report: s", f"{median(with_report):.3f}", spread(with_report, ".3f"), ""]
    )
    out.rows.append(["  with / without", f"{cost:.3f}", "", "< 1.03"])
    out.rows.append(
        ["  report.html final after the command started: s", f"{median(ready):.2f}", spread(ready), ""]
    )
    out.target(
        "case 1 e2e, with the report / without",
        cost,
        "< 1.03x",
        cost is not None and cost < 1.03,
        f"{cost:.3f}x",
    )

    # (c) the ui's run list
    template = write_recipe(cfg, "bench-ui", RECIPE.format(n=10))
    made = toolkit_run(cfg, template)
    listed = _run_list(cfg, n_runs, Path(made["run_dir"]))
    shutil.rmtree(Path(made["run_dir"]).parent, ignore_errors=True)
    out.rows.append(
        [f"ui run list of {n_runs:,} runs, first request: s", f"{listed['cold_s']:.3f}", "", "< 1"]
    )
    out.rows.append([f"ui run list of {n_runs:,} runs, later requests: s", f"{listed['warm_s']:.3f}", "", ""])
    out.target(
        f"ui run list of {n_runs:,} runs (cold)",
        listed["cold_s"],
        "< 1 s",
        listed["cold_s"] < 1.0,
        f"{listed['cold_s']:.3f} s",
    )
    out.data.update(
        reports=reports, with_report=with_report, without=without, ready=ready, run_list=listed, opened=opened
    )
    return out
