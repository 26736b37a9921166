"""report.html: written by every run, by `toolkit report` at any time, from the run directory alone."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys

import pytest
from report_helpers import MIXED, cli, project, run_cli, run_dirs, start_cli, started_run, wait_for

from toolkit.report import after_run, collect, read_data, write_report


@pytest.fixture
def mixed_run(tmp_path, monkeypatch):
    """A finished run with successes, failures, logs and a skipped downstream task."""
    monkeypatch.chdir(tmp_path)
    recipe = project(tmp_path, "mixed", MIXED.format(n=8))
    assert run_cli("run", str(recipe), "-q", "--progress", "off") == 1
    (run,) = run_dirs(tmp_path / "runs", "mixed")
    return run


def test_a_failed_run_writes_its_report_with_everything_in_it(mixed_run):
    page = mixed_run / "report.html"
    assert page.is_file()
    text = page.read_text()
    # self-contained: no fetch of anything, no external script, style or font
    for needle in ("http://", "https://", "src=", "<link", "@import", "fetch("):
        assert needle not in text.replace("http://www.w3.org/2000/svg", ""), needle
    data = read_data(page)
    s = data["summary"]
    assert (s["recipe"], s["status"], s["run_id"]) == ("mixed", "failed", mixed_run.name)
    assert s["counts"]["ok"] == 12 and s["counts"]["failed"] == 4 and s["counts"]["skipped"] == 1
    assert s["executor"] and s["workers"] == 2 and s["toolkit"] and s["python"]
    cols = data["columns"]
    records = [json.loads(line) for line in (mixed_run / "results.jsonl").read_text().splitlines()]
    assert sorted(cols["id"]) == sorted(r["instance"] for r in records)
    statuses = {i: data["statuses"][s] for i, s in zip(cols["id"], cols["status"], strict=True)}
    assert statuses == {r["instance"]: r["status"] for r in records}
    # every instance that ran is on a lane of the worker that ran it
    worker_of = {r["instance"]: r["worker"] for r in records}
    for i, lane in zip(cols["id"], cols["lane"], strict=True):
        if worker_of[i]:
            assert data["lanes"][lane] == worker_of[i]
    work, total = data["tasks"]
    assert (work["name"], work["done"], work["counts"]["failed"]) == ("work", 16, 4)
    assert work["p50"] <= work["p95"] <= work["max"]
    assert work["peak_rss_mib"] > 0 and work["throughput"] > 0
    assert total["needs"] == ["work"] and total["counts"]["skipped"] == 1
    failures = data["failures"]
    assert failures["total"] == 4 and failures["types"] == [["ValueError", 4]]
    first = failures["listed"][0]
    assert "bad input" in first["message"] and "Traceback" in first["traceback"]
    # the log of each failure is linked, and the file is there
    name = data["logs"][str(first["row"])]
    assert "working on" in (mixed_run / "logs" / name).read_text()
    assert data["params"]["names"] == ["n", "size"]
    assert len(data["slowest"]) == 17 - 1  # the skipped instance never ran


def test_report_command_rewrites_and_writes_elsewhere(mixed_run, tmp_path, capsys):
    (mixed_run / "report.html").unlink()
    assert run_cli("report", "mixed/latest") == 0
    assert (mixed_run / "report.html").is_file()
    out = tmp_path / "elsewhere" / "r.html"
    out.parent.mkdir()
    assert run_cli("report", mixed_run.name, "-o", str(out)) == 0
    assert str(out) in capsys.readouterr().out
    text = out.read_text()
    # links to the run's files stay right from where the report is
    assert json.dumps({"run": f"../runs/mixed/{mixed_run.name}/", "ui": False}) in text
    assert read_data(out)["summary"]["run_id"] == mixed_run.name


def test_report_of_no_such_run_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli("report", "nope") == 2
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "damaged",
    [b"\xff\xfe not UTF-8", b"not [toml", b'status = 7\nstarted = 12\n[resolved]\ntask = "x"\n'],
    ids=["not-utf8", "not-toml", "wrong-types"],
)
def test_a_run_with_a_damaged_manifest_gets_a_report_of_what_can_be_read(mixed_run, damaged):
    (mixed_run / "manifest.toml").write_bytes(damaged)
    with (mixed_run / "results.jsonl").open("a") as f:
        f.write('{"instance": "x", "status": "edited by hand"}\n')
    proc = cli("report", str(mixed_run))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = read_data(mixed_run / "report.html")
    s = data["summary"]
    assert s["status"] == "damaged" and "manifest.toml" in s["reason"]
    assert s["counts"]["ok"] == 12 and s["counts"]["failed"] == 4  # from results.jsonl
    assert len(data["columns"]["id"]) == 17  # the line edited by hand is passed over


def test_a_succeeded_run_and_an_interrupted_run_write_reports(tmp_path):
    gate = tmp_path / "gate"
    recipe = project(
        tmp_path,
        "slow",
        f"""
        [recipe]
        name = "slow"
        plugins = ["tasks.py"]
        [run]
        workers = 2
        executor = "process"
        [[task]]
        name = "s"
        uses = "rt.slow"
        params = {{ gate = "{gate}", seconds = 0.05 }}
        matrix = {{ i = {{ range = [0, 200] }} }}
        """,
    )
    proc = start_cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    try:
        run = started_run(tmp_path / "runs", "slow")
        gate.write_text("go")
        wait_for(
            lambda: (run / "results.jsonl").is_file() and (run / "results.jsonl").stat().st_size,
            what="records",
        )
        # while it runs: `toolkit report` writes what is there, marked live
        live = cli("report", str(run), cwd=tmp_path)
        assert live.returncode == 0, live.stderr
        data = read_data(run / "report.html")
        assert data["summary"]["status"] == "running" and data["summary"]["live"]
        assert 0 < len(data["columns"]["id"]) < 200
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    data = read_data(run / "report.html")
    assert data["summary"]["status"] == "interrupted"
    assert not data["summary"]["live"]


def test_cached_instances_are_not_on_this_runs_timeline(tmp_path, monkeypatch):
    """A cached record keeps the time and worker of the run it was copied from: the
    report lists it, but its timeline, span, throughput and slowest are this run's."""
    monkeypatch.chdir(tmp_path)
    recipe = project(tmp_path, "mixed", MIXED.format(n=4))
    assert run_cli("run", str(recipe), "--cache", "-q", "--progress", "off") == 1
    assert run_cli("run", str(recipe), "--cache", "-q", "--progress", "off") == 1
    _first, second = (p for p in run_dirs(tmp_path / "runs", "mixed") if p.is_dir())
    records = [json.loads(line) for line in (second / "results.jsonl").read_text().splitlines()]
    cached = {r["instance"] for r in records if r["cached"]}
    assert cached and all(r["status"] == "ok" for r in records if r["cached"])  # the 6 ok ones
    ran = [r for r in records if not r["cached"] and r["started"]]
    data = read_data(second / "report.html")
    cols = data["columns"]
    rows = {cols["id"][i] for i in cols["cached"]}
    assert rows == cached
    for i in cols["cached"]:
        assert cols["start"][i] == -1 and cols["lane"][i] == -1
    # t0 is this run's first start; every lane is a worker of this run
    assert data["t0"] == pytest.approx(min(collect_time(r["started"]) for r in ran), abs=1e-5)
    assert set(data["lanes"]) == {r["worker"] for r in ran}
    assert all(cols["id"][i] not in cached for i in data["slowest"])
    work = data["tasks"][0]
    assert work["span_s"] < 60  # not stretched back to the first run
    assert work["throughput"] == pytest.approx(sum(r["task"] == "work" for r in ran) / work["span_s"])


def collect_time(text):
    from toolkit.report.data import parse_utc

    return parse_utc(text)


def test_a_later_record_of_an_instance_replaces_the_earlier_one(mixed_run):
    lines = (mixed_run / "results.jsonl").read_text().splitlines()
    failed = next(json.loads(line) for line in lines if '"failed"' in line)
    again = {**failed, "status": "ok", "error": None, "attempts": 2}
    with open(mixed_run / "results.jsonl", "a") as f:
        f.write(json.dumps(again) + "\n" + '{"task": "work", "inst')  # and a torn last line
    data = collect(mixed_run)
    cols = data["columns"]
    assert len(cols["id"]) == len(lines)
    row = cols["id"].index(failed["instance"])
    assert data["statuses"][cols["status"][row]] == "ok" and cols["attempts"][row] == 2
    assert data["failures"]["total"] == 3


def test_many_processes_are_packed_into_slots(tmp_path):
    """The process executor starts one process per instance: the timeline packs them
    into the fewest lanes that never overlap instead of one lane per process."""
    run = tmp_path / "runs" / "p" / "20260101-000000-abcd"
    (run / "logs").mkdir(parents=True)
    (run / "manifest.toml").write_text('run_id = "x"\nrecipe = "p"\nstatus = "succeeded"\n')
    lines = []
    for i in range(200):
        start = (
            f"2026-01-01T00:00:{i // 2:02d}.{(i % 2) * 100000:06d}Z"
            if i < 120
            else f"2026-01-01T00:01:{(i - 120) // 2:02d}.000000Z"
        )
        lines.append(
            json.dumps(
                {
                    "task": "t",
                    "instance": f"t[i={i}]",
                    "key": f"k{i}",
                    "params": {"i": i},
                    "status": "ok",
                    "value": i,
                    "error": None,
                    "attempts": 1,
                    "started": start,
                    "finished": start,
                    "duration_s": 0.9,
                    "worker": f"vm:{1000 + i}",
                    "peak_rss_mib": 10.0,
                }
            )
        )
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    data = collect(run)
    assert data["lanes"] == ["slot 1", "slot 2"]
    by_lane: dict[int, list[tuple[int, int]]] = {}
    for s, d, lane in zip(
        data["columns"]["start"], data["columns"]["dur"], data["columns"]["lane"], strict=True
    ):
        by_lane.setdefault(lane, []).append((s, s + d))
    for spans in by_lane.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_big_runs_get_their_report_from_a_background_writer(mixed_run, monkeypatch):
    """When writing the report would add much to a run of very many tiny instances, a
    background process writes it; until then report.html says so."""
    (mixed_run / "report.html").unlink()
    monkeypatch.setattr(after_run, "BYTES_PER_SECOND", 10.0)
    assert after_run.write_after_run(mixed_run, run_seconds=0.5) == "background"
    page = mixed_run / "report.html"
    wait_for(lambda: page.is_file() and not after_run.is_pending(page), timeout=60, what="the report")
    assert read_data(page)["summary"]["run_id"] == mixed_run.name
    monkeypatch.setattr(after_run, "BYTES_PER_SECOND", 30e6)
    assert after_run.write_after_run(mixed_run, run_seconds=0.5) == "written"


def test_a_run_that_leaves_its_report_to_the_background_loads_no_report_writer(mixed_run):
    """The process that hands the report over (toolkit run, at the end of a big run)
    imports none of what writing it takes: that is the background writer's work."""
    (mixed_run / "report.html").unlink()
    code = (
        "import sys\n"
        "from toolkit.report import after_run\n"
        "after_run.BYTES_PER_SECOND = 10.0\n"
        f"assert after_run.write_after_run({str(mixed_run)!r}, 0.5) == 'background'\n"
        "heavy = ('html', 'toolkit.report.data', 'toolkit.report.html')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    # unmeasured: coverage.py, measuring a child, imports html itself
    unmeasured = {**os.environ, "COVERAGE_PROCESS_CONFIG": "", "COVERAGE_PROCESS_START": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=unmeasured
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    page = mixed_run / "report.html"
    wait_for(lambda: page.is_file() and not after_run.is_pending(page), timeout=60, what="the report")
    assert read_data(page)["summary"]["run_id"] == mixed_run.name


def test_report_stays_small_for_many_instances(tmp_path):
    run = tmp_path / "runs" / "big" / "20260101-000000-abcd"
    (run / "logs").mkdir(parents=True)
    (run / "manifest.toml").write_text(
        'run_id = "x"\nrecipe = "big"\nstatus = "succeeded"\n[counts]\ntotal = 20000\nok = 20000\n'
    )
    rec = {
        "task": "sq",
        "instance": "",
        "key": "",
        "params": {},
        "status": "ok",
        "value": 1,
        "error": None,
        "attempts": 1,
        "started": "",
        "finished": "",
        "duration_s": 0.0,
        "worker": "",
        "peak_rss_mib": 19.1,
    }
    with open(run / "results.jsonl", "w") as f:
        for i in range(20_000):
            t = f"2026-01-01T00:00:{i // 1000:02d}.{(i % 1000) * 1000:06d}Z"
            rec.update(
                instance=f"sq[x={i}]",
                key=f"{i:020x}",
                params={"x": i},
                started=t,
                finished=t,
                duration_s=0.000012,
                worker=f"vm:{10 + i % 2}",
            )
            f.write(json.dumps(rec) + "\n")
    path = write_report(run)
    # ~1.3 MB per 100,000 instances of this shape; the limit is 5 MB
    assert path.stat().st_size < 20_000 * 40
    assert len(read_data(path)["columns"]["id"]) == 20_000
