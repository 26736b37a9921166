"""toolkit ui over real run directories: the token, read-only, the pages' data, live progress."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from report_helpers import MIXED, cli, project, run_cli, run_dirs, start_cli, started_run, wait_for

from toolkit.ui.server import make_server, serve_in_thread, url_of


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Two recipes' runs: one failed, one succeeded."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", str(project(tmp_path, "mixed", MIXED.format(n=4))), "-q", "--progress", "off") == 1
    ok = project(
        tmp_path,
        "fine",
        MIXED.replace('name = "mixed"', 'name = "fine"').format(n=3).replace("n % 4 == 3", "False"),
    )
    (tmp_path / "tasks2.py").write_text("")
    run_cli("run", str(ok), "-q", "--progress", "off")
    return tmp_path / "runs"


@pytest.fixture
def ui(runs):
    server = make_server(str(runs), None, "127.0.0.1", 0)
    serve_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


def get(url, cookie=None, method="GET"):
    req = urllib.request.Request(url, method=method, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def base_of(server):
    return url_of(server).split("/?")[0]


def test_without_the_token_everything_is_403(ui):
    base = base_of(ui)
    for path in ("/", "/api/runs", "/schedules", "/runs/mixed/x/report.html", "/?token=wrong"):
        status, body, _ = get(base + path)
        assert status == 403, path
        assert b"token" in body
    status, _, _ = get(base + "/", cookie=f"toolkit_ui_{ui.server_port}=wrong")
    assert status == 403


def test_the_token_opens_a_session_and_it_only_reads(ui):
    url = url_of(ui)
    assert url.startswith("http://127.0.0.1:")
    status, body, headers = get(url)
    assert status == 200 and b'"page": "runs"' in body
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    status, body, _ = get(base_of(ui) + "/api/runs", cookie=cookie)
    assert status == 200
    for method in ("POST", "PUT", "DELETE"):
        assert get(url, method=method)[0] == 405


def test_run_list_filters_and_pages(ui, runs):
    token = ui.app.token
    base = base_of(ui)
    data = json.loads(get(f"{base}/api/runs?token={token}")[1])
    assert data["recipes"] == ["fine", "mixed"]
    assert {r["recipe"]: r["status"] for r in data["runs"]} == {"mixed": "failed", "fine": "succeeded"}
    started = [r["started"] for r in data["runs"]]
    assert started == sorted(started, reverse=True)
    only = json.loads(get(f"{base}/api/runs?recipe=mixed&token={token}")[1])
    assert [r["recipe"] for r in only["runs"]] == ["mixed"]
    failed = json.loads(get(f"{base}/api/runs?status=succeeded&token={token}")[1])
    assert [r["status"] for r in failed["runs"]] == ["succeeded"]
    (run,) = run_dirs(runs, "mixed")
    page = f"{base}/runs/mixed/{run.name}"
    status, _, _ = get(f"{page}?token={token}")
    assert status == 200  # redirected to the page with its slash
    status, body, _ = get(f"{page}/report.html?token={token}")
    assert status == 200 and b"report-data" in body
    status, body, _ = get(f"{page}/log?instance=work%5Bn%3D3%2Csize%3Ds%5D&token={token}")
    assert status == 200 and b"working on 3" in body and b"bad input 3" in body
    status, body, _ = get(f"{page}/manifest.toml?token={token}")
    assert status == 200 and run.name.encode() in body
    for bad in (
        "/runs/..%2F..%2Fetc/passwd/",
        "/runs/mixed/latest/",
        f"/runs/mixed/{run.name}/logs/..%2Fmanifest.toml",
    ):
        assert get(f"{base}{bad}?token={token}")[0] == 404, bad


def test_links_and_odd_names_never_read_outside_the_run(ui, runs, tmp_path):
    token = ui.app.token
    (run,) = run_dirs(runs, "mixed")
    secret = tmp_path / "outside.txt"
    secret.write_text("not for the ui")
    (run / "logs" / "planted.log").symlink_to(secret)  # a task can leave a link in its run
    page = f"{base_of(ui)}/runs/mixed/{run.name}"
    for bad in ("logs/planted.log", "logs/%00", "logs/a%00b.log", "logs/..%2F..%2F..%2Foutside.txt"):
        status, body, _ = get(f"{page}/{bad}?token={token}")
        assert status == 404 and b"not for the ui" not in body, bad
    status, body, _ = get(f"{page}/log?instance=..%2F..%2F..%2F..%2Foutside.txt&token={token}")
    assert status == 200 and b"not for the ui" not in body


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda text: text.replace('status = "failed"', "status = 7"), b"status is an integer"),
        (lambda text: text.replace('started = "', 'started = 12 #"'), b"started is an integer"),
        (lambda text: text.replace("ok = 6", 'ok = "six"'), b"counts holds values that are not counts"),
        (lambda text: "not [toml", b"cannot be read"),
        (lambda text: "\udcff", b"cannot be read"),
    ],
    ids=["status-int", "started-int", "counts-str", "not-toml", "not-utf8"],
)
def test_a_damaged_run_is_listed_as_damaged_and_takes_no_page_down(ui, runs, damage, why):
    token = ui.app.token
    base = base_of(ui)
    (run,) = run_dirs(runs, "mixed")
    manifest = run / "manifest.toml"
    manifest.write_bytes(damage(manifest.read_text()).encode("utf-8", "surrogateescape"))
    status, body, _ = get(f"{base}/api/runs?token={token}")
    assert status == 200, body
    listed = {r["recipe"]: r for r in json.loads(body)["runs"]}
    assert listed["fine"]["status"] == "succeeded"  # the others are still listed
    assert listed["mixed"]["status"] == "damaged" and why.decode() in listed["mixed"]["reason"]
    assert listed["mixed"]["counts"]["failed"] == 2  # counted from results.jsonl
    status, body, _ = get(f"{base}/api/runs/mixed/{run.name}?token={token}")
    assert status == 200 and json.loads(body)["status"] == "damaged"
    for page in ("", "report.html", "log?instance=work%5Bn%3D3%2Csize%3Ds%5D"):
        status, body, _ = get(
            f"{base}/runs/mixed/{run.name}/{page}{'&' if '?' in page else '?'}token={token}"
        )
        assert status == 200, (page, body[:300])
    (run / "report.html").unlink()  # made on the fly from what can be read
    status, body, _ = get(f"{base}/runs/mixed/{run.name}/report.html?token={token}")
    assert status == 200 and b"report-data" in body


def test_live_progress_of_a_running_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
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
        params = {{ gate = "{gate}", seconds = 0.05 }}
        matrix = {{ i = {{ range = [0, 300] }} }}
        """,
    )
    proc = start_cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    server = make_server(str(tmp_path / "runs"), None, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        run = started_run(tmp_path / "runs", "live")
        wait_for(lambda: (run / "manifest.toml").is_file(), what="the manifest")
        api = f"{base_of(server)}/api/runs/live/{run.name}?token={server.app.token}"
        first = json.loads(get(api)[1])
        assert first["status"] == "running" and first["total"] == 300 and first["done"] == 0
        gate.write_text("go")
        later = wait_for(lambda: (p := json.loads(get(api)[1]))["done"] >= 10 and p, what="progress")
        assert later["status"] == "running" and later["rate"] > 0 and later["eta_s"] > 0
        listed = json.loads(get(f"{base_of(server)}/api/runs?token={server.app.token}")[1])["runs"][0]
        assert listed["status"] == "running" and listed["counts"]["ok"] >= 10
        status, body, _ = get(f"{base_of(server)}/runs/live/{run.name}/report.html?token={server.app.token}")
        assert status == 200 and b"report-data" in body
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.shutdown()
        server.server_close()


def test_the_rate_of_a_resumed_run_is_its_own(tmp_path, monkeypatch):
    """The records of the sessions before a resume say nothing of its pace: a resumed
    run that has done nothing yet has no rate and no ETA (not done / a few ms)."""
    monkeypatch.chdir(tmp_path)
    gate = tmp_path / "gate"
    gate.write_text("open")
    recipe = project(
        tmp_path,
        "again",
        f"""
        [recipe]
        name = "again"
        plugins = ["tasks.py"]
        [run]
        workers = 2
        executor = "process"
        [[task]]
        name = "s"
        uses = "rt.slow"
        params = {{ gate = "{gate}", seconds = 0.1 }}
        matrix = {{ i = {{ range = [0, 200] }} }}
        """,
    )
    first = start_cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    resumed = None
    server = make_server(str(tmp_path / "runs"), None, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        run = started_run(tmp_path / "runs", "again")
        results = run / "results.jsonl"
        wait_for(lambda: results.is_file() and results.read_text().count("\n") >= 6, what="records")
        os.killpg(first.pid, signal.SIGINT)
        assert first.wait(60) == 130
        gate.unlink()  # the resumed session waits at the gate: it does nothing for now
        before = results.read_text().count("\n")
        resumed = start_cli("run", str(recipe), "--resume", "-q", "--progress", "off", cwd=tmp_path)
        api = f"{base_of(server)}/api/runs/again/{run.name}?token={server.app.token}"
        wait_for(lambda: json.loads(get(api)[1])["status"] == "running", what="the resumed run")
        p = json.loads(get(api)[1])
        assert p["done"] == before and p["rate"] is None and p["eta_s"] is None
        time.sleep(1.1)  # the rate of a resumed session is measured over a second at least
        p = json.loads(get(api)[1])
        assert p["done"] == before and p["rate"] == 0 and p["eta_s"] is None
        gate.write_text("open")
        p = wait_for(lambda: (q := json.loads(get(api)[1]))["done"] > before + 2 and q, what="progress")
        assert p["rate"] > 0 and p["eta_s"] > 0
        os.killpg(resumed.pid, signal.SIGINT)
        resumed.wait(60)
    finally:
        for proc in (first, resumed):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        server.shutdown()
        server.server_close()


def test_schedules_from_a_state_directory(tmp_path):
    from datetime import UTC, datetime, timedelta

    from toolkit.schedule.state import RecipeState, StateDir

    state = StateDir(tmp_path / "state")
    (state.path / "recipes").mkdir(parents=True)
    now = datetime.now(UTC)
    state.save(
        "nightly",
        "/x/nightly.toml",
        RecipeState(
            handled_until=now,
            next_firing=now + timedelta(hours=1),
            last_firing=now - timedelta(hours=23),
            last_run_id="r1",
        ),
    )
    state.log(
        {
            "time": "t",
            "event": "daemon_started",
            "recipes": [{"name": "nightly", "path": "p", "cron": "@daily"}],
        }
    )
    state.log({"time": "t", "event": "missed", "recipe": "nightly", "first": "a", "last": "b", "count": 3})
    state.log(
        {"time": "t", "event": "skipped", "recipe": "nightly", "scheduled": "s", "reason": "still going"}
    )
    state.log(
        {
            "time": "t",
            "event": "finished",
            "recipe": "nightly",
            "run_id": "r1",
            "exit_code": 1,
            "duration_s": 2.0,
        }
    )
    server = make_server(str(tmp_path / "runs"), str(state.path), "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        data = json.loads(get(f"{base_of(server)}/api/schedules?token={server.app.token}")[1])
    finally:
        server.shutdown()
        server.server_close()
    (r,) = data["recipes"]
    assert r["recipe"] == "nightly" and r["next_firing"] and r["schedule"] == {"cron": "@daily"}
    assert r["missed_total"] == 1 and r["missed"][0]["count"] == 3 and r["missed_firings"] == 3
    assert r["skipped"][0]["reason"] == "still going"
    assert r["last_outcome"]["exit_code"] == 1
    assert data["daemon"]["running"] is False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_command_prints_a_local_url_with_a_token(runs, tmp_path, stop):
    proc = start_cli(
        "ui",
        "--output",
        str(runs),
        "--port",
        "0",
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        # as a background job of a script starts it: SIGINT ignored; Ctrl-C still stops it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        line = ""
        while "token=" not in line:
            line = proc.stdout.readline()
            assert line
        url = line.strip()
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        assert get(url.split("?")[0])[0] == 403
        assert get(url)[0] == 200
    finally:
        os.killpg(proc.pid, stop)
        assert proc.wait(20) == 0
        proc.stdout.close()


def test_a_port_in_use_is_one_clear_error(ui, runs):
    proc = cli("ui", "--output", str(runs), "--port", str(ui.server_port))
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{ui.server_port}" in proc.stderr and "Traceback" not in proc.stderr
