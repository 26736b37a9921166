"""The report and the ui in a real browser: bars, filters, a live run list, the token."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from conftest import full_page_shot, wait_ready
from report_helpers import MIXED, project, run_cli, run_dirs, start_cli, wait_for

COLOURS = {"ok": (46, 125, 50), "failed": (198, 40, 40), "skipped": (158, 158, 158)}


@pytest.fixture
def mixed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", str(project(tmp_path, "mixed", MIXED.format(n=8))), "-q", "--progress", "off") == 1
    (run,) = run_dirs(tmp_path / "runs", "mixed")
    return run


def test_report_timeline_has_one_bar_per_instance_and_the_table_filters(browser, mixed, shots):
    records = [json.loads(line) for line in (mixed / "results.jsonl").read_text().splitlines()]
    ran = {r["instance"]: r["status"] for r in records if r["started"]}
    browser.get((mixed / "report.html").as_uri())
    wait_ready(browser)
    bars = browser.execute_script("return toolkitReport.bars()")
    assert sorted(b["id"] for b in bars) == sorted(ran)
    # each bar is on the canvas in its status's colour
    pixels = browser.execute_script(
        """
        const c = document.getElementById('timeline-canvas'), ctx = c.getContext('2d');
        const k = c.width / c.getBoundingClientRect().width;
        return arguments[0].map(b => Array.from(ctx.getImageData(Math.floor((b.x + b.w / 2) * k),
            Math.floor((b.y + b.h / 2) * k), 1, 1).data.slice(0, 3)));
        """,
        bars,
    )
    for bar, rgb in zip(bars, pixels, strict=True):
        assert tuple(rgb) == COLOURS[ran[bar["id"]]], bar
    full_page_shot(browser, shots / "report.png")

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def ids():  # read in one script: the table is redrawn as filters change
        return browser.execute_script(
            "return [...document.querySelectorAll('#instance-table tbody tr')].map(tr => tr.cells[0].textContent)"
        )

    assert len(ids()) == len(records)
    Select(browser.find_element(By.ID, "filter-status")).select_by_visible_text("failed")
    failed = sorted(r["instance"] for r in records if r["status"] == "failed")
    assert sorted(ids()) == failed
    Select(browser.find_element(By.ID, "filter-status")).select_by_visible_text("every status")
    box = browser.find_element(By.ID, "filter-text")
    box.send_keys("n=5 size=m")
    wait_for(lambda: ids() == ["work[n=5,size=m]"], what="the param filter")
    box.clear()
    box.send_keys("size=s")
    wait_for(
        lambda: sorted(ids()) == sorted(r["instance"] for r in records if r["params"].get("size") == "s"),
        what="size=s",
    )
    # sort by duration, longest first
    header = browser.find_element(By.CSS_SELECTOR, "#instance-table th[data-col='3']")
    header.click()
    header.click()
    durations = {r["instance"]: r["duration_s"] for r in records}
    got = [durations[i] for i in ids()]
    assert got == sorted(got, reverse=True)
    browser.find_element(By.CSS_SELECTOR, "#failures details summary").click()
    full_page_shot(browser, shots / "report-filtered.png")


def test_ui_pages_token_and_a_live_run_list(browser, mixed, tmp_path, shots):
    from datetime import UTC, datetime, timedelta

    from selenium.webdriver.common.by import By

    from toolkit.schedule.state import RecipeState, StateDir

    state = StateDir(tmp_path / "state")
    (state.path / "recipes").mkdir(parents=True)
    now = datetime.now(UTC)
    state.save(
        "mixed",
        "/x/mixed.toml",
        RecipeState(
            handled_until=now,
            next_firing=now + timedelta(hours=1),
            last_firing=now - timedelta(hours=1),
            last_run_id=mixed.name,
        ),
    )
    state.log(
        {
            "time": "t",
            "event": "daemon_started",
            "recipes": [{"name": "mixed", "path": "p", "cron": "0 * * * *"}],
        }
    )
    state.log(
        {
            "time": "t",
            "event": "missed",
            "recipe": "mixed",
            "first": "2026-01-01T00:00:00.000000Z",
            "last": "2026-01-01T03:00:00.000000Z",
            "count": 4,
        }
    )
    state.log(
        {
            "time": "t",
            "event": "finished",
            "recipe": "mixed",
            "run_id": mixed.name,
            "exit_code": 1,
            "duration_s": 1.2,
        }
    )

    ui = start_cli(
        "ui",
        "--output",
        "runs",
        "--state",
        str(state.path),
        "--port",
        "0",
        cwd=tmp_path,
        stdout=subprocess.PIPE,
    )
    run = None
    try:
        line = ""
        while "token=" not in line:
            line = ui.stdout.readline()
            assert line, "toolkit ui printed no URL"
        url = line.strip()
        base = url.split("/?")[0]
        browser.get(base + "/")
        assert "403" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(url)
        wait_ready(browser)
        assert browser.find_elements(By.CSS_SELECTOR, f"#runs tr[data-run='{mixed.name}']")
        # a real run starts: the list shows it running, then done, without a reload
        gate = tmp_path / "gate"
        recipe = project(
            tmp_path,
            "live",
            f"""
            [recipe]
            name = "live"
            plugins = ["tasks.py"]
            [run]
            workers = 2
            executor = "process"
            [[task]]
            name = "s"
            uses = "rt.slow"
            params = {{ gate = "{gate}", seconds = 0.02 }}
            matrix = {{ i = {{ range = [0, 60] }} }}
            """,
        )
        browser.execute_script("window.notReloaded = true")
        run = start_cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
        running = "#runs tr[data-status='running']"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, running), what="a running row")
        full_page_shot(browser, shots / "ui-runs.png")
        (live,) = run_dirs(tmp_path / "runs", "live")
        gate.write_text("go")
        wait_for(
            lambda: browser.find_elements(
                By.CSS_SELECTOR, f"#runs tr[data-run='{live.name}'][data-status='succeeded']"
            ),
            timeout=90,
            what="the run to end in the list",
        )
        assert browser.execute_script("return window.notReloaded === true")
        assert run.wait(60) == 0
        # one run's page, the instance log, the schedules
        browser.get(f"{base}/runs/mixed/{mixed.name}/")
        wait_ready(browser)
        assert "failed" in browser.find_element(By.ID, "run-status").text
        full_page_shot(browser, shots / "ui-run.png", height=1400)
        browser.get(f"{base}/runs/mixed/{mixed.name}/log?instance=work%5Bn%3D3%2Csize%3Ds%5D")
        wait_ready(browser)
        assert "working on 3" in browser.find_element(By.ID, "log").text
        full_page_shot(browser, shots / "ui-log.png")
        browser.get(f"{base}/schedules")
        wait_ready(browser)
        section = browser.find_element(By.CSS_SELECTOR, "section[data-recipe='mixed']")
        assert "4 slots" in section.find_element(By.CSS_SELECTOR, "[data-fact='missed']").text
        assert mixed.name in section.find_element(By.CSS_SELECTOR, "[data-fact='outcome']").text
        full_page_shot(browser, shots / "ui-schedules.png")
    finally:
        for proc in (run, ui):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(30)
        ui.stdout.close()
