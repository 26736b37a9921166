"""Result sinks and the collector: jsonl, csv, plugin sinks, failing sinks."""

from __future__ import annotations

import csv
import json
import re
import tomllib

import pytest

import toolkit
from toolkit.api import execute, prepare
from toolkit.builtin.sinks import CsvSink, JsonlSink, csv_row, order_columns
from toolkit.errors import PluginError
from toolkit.store.sinks import Collector, RecordBatch, atomic_output


def rec(i, value, status="ok", **extra):
    return {
        "task": "t",
        "instance": f"t[i={i}]",
        "key": f"k{i}",
        "params": {"i": i},
        "status": status,
        "value": value,
        "error": None if status == "ok" else {"type": "E", "message": "bad", "traceback": ""},
        "attempts": 1,
        "started": None,
        "finished": None,
        "duration_s": None,
        "worker": "h:1",
        "peak_rss_mib": 12.5,
        **extra,
    }


def batch(*records):
    blob = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    return RecordBatch(blob, len(records))


def write_jsonl(run_dir, *records):
    with open(run_dir / "results.jsonl", "ab") as f:
        f.write(batch(*records).jsonl)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_record_batch_decodes_once_on_demand():
    b = batch(rec(1, 1), rec(2, 2))
    assert "records" not in b.__dict__
    assert [r["value"] for r in b.records] == [1, 2]
    assert b.records is b.records


def test_jsonl_appends_and_cuts_a_torn_tail(tmp_path):
    (tmp_path / "results.jsonl").write_bytes(b'{"key": "k0"}\n{"key": "k')
    sink = JsonlSink(tmp_path)
    sink.write(batch(rec(1, 1)))
    sink.close("succeeded")
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["k0", "k1"]


def test_csv_row_flattens_params_values_and_errors():
    row = csv_row(rec(1, {"pi": 3.1, "by": {"x": 1}, "list": [1, 2]}))
    assert row["params.i"] == 1
    assert row["value.pi"] == 3.1 and row["value.by.x"] == 1 and row["value.list"] == [1, 2]
    assert row["error"] is None
    assert csv_row(rec(2, 5))["value"] == 5
    assert csv_row(rec(3, None, status="failed"))["error"] == "E: bad"
    assert order_columns(["value.a", "params.x", "error", "task", "status", "extra"]) == [
        "task",
        "status",
        "params.x",
        "value.a",
        "error",
    ]


def test_csv_header_comes_from_the_first_record_and_grows_at_the_end(tmp_path):
    write_jsonl(tmp_path, rec(0, None, status="failed"), rec(1, {"a": 1}), rec(2, {"a": 2, "b": True}))
    CsvSink(tmp_path).close("failed")  # results.jsonl exists: a resume, the csv is rebuilt
    assert read_csv(tmp_path / "results.csv")[0][-4:] == ["value.a", "value.b", "error", "extra"]

    (tmp_path / "results.jsonl").unlink()
    (tmp_path / "results.csv").unlink()
    sink = CsvSink(tmp_path)
    records = [rec(0, None, status="failed"), rec(1, {"a": 1}), rec(2, {"a": 2, "b": True})]
    write_jsonl(tmp_path, *records)  # what the jsonl sink would have written
    sink.write(batch(*records))
    rows = read_csv(tmp_path / "results.csv")
    header = rows[0]
    assert header[-3:] == ["value", "error", "extra"]  # from the first record, a failure
    extra = json.loads(rows[3][header.index("extra")])
    assert extra == {"value.a": 2, "value.b": True}  # nothing is lost while the run goes on
    sink.close("succeeded")
    rows = read_csv(tmp_path / "results.csv")
    header = rows[0]
    assert header[-4:] == ["value.a", "value.b", "error", "extra"]
    assert "value" not in header  # a column that only ever held nothing is left out
    by = {r[header.index("instance")]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert by["t[i=2]"]["value.b"] == "true" and by["t[i=1]"]["value.b"] == ""
    assert by["t[i=0]"]["error"] == "E: bad"
    assert all(r["extra"] == "" for r in by.values())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_csv_resume_rebuilds_from_jsonl_then_appends(tmp_path):
    write_jsonl(tmp_path, rec(1, {"a": 1}), rec(2, {"a": 2}))
    # a killed session: the last batch reached results.jsonl, not results.csv, and a row is torn
    (tmp_path / "results.csv").write_text("task,instance\r\nt,t[i=1]\r\nt,t[")
    sink = CsvSink(tmp_path)
    sink.write(batch(rec(3, {"a": 3})))
    sink.close("succeeded")
    rows = read_csv(tmp_path / "results.csv")
    assert rows[0].count("task") == 1
    assert [r[rows[0].index("instance")] for r in rows[1:]] == ["t[i=1]", "t[i=2]", "t[i=3]"]


def test_atomic_output_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(ZeroDivisionError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise ZeroDivisionError
    assert path.read_text() == "old"
    with atomic_output(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


class _Memory:
    def __init__(self):
        self.batches, self.closed = [], None

    def write(self, b):
        self.batches.append(b.n)

    def close(self, status):
        self.closed = status


class _Broken(_Memory):
    def write(self, b):
        raise OSError("disk on fire")


def test_collector_stops_at_a_failing_sink_and_names_its_plugin():
    primary, broken, other = _Memory(), _Broken(), _Memory()
    collector = Collector(
        [primary, broken, other], names=["jsonl", "broken", "other"], plugins=["builtin.sinks", "fire", "x"]
    )
    message = "plugin 'fire' failed in sink 'broken' (writing): OSError: disk on fire"
    with pytest.raises(PluginError, match=re.escape(message)):
        collector.write(batch(rec(1, 1)).jsonl, 1)
    assert primary.batches == [1]  # the primary sink has the records already
    collector.close("failed")
    assert (primary.closed, broken.closed, other.closed) == ("failed", "failed", "failed")


def test_collector_stops_on_an_error_of_the_primary_sink():
    primary = _Broken()
    with pytest.raises(OSError):
        Collector([primary]).write(batch(rec(1, 1)).jsonl, 1)


def test_collector_logs_why_an_instance_timed_out(tmp_path):
    collector = Collector([_Memory()], logs=tmp_path / "logs")
    timeout = rec(1, None, status="timeout")
    timeout["error"]["message"] = "ran longer than 1s"
    collector.write(batch(rec(0, 0), timeout).jsonl, 2, ("timeout",))
    log = (tmp_path / "logs" / "t[i=1].log").read_text()
    assert "timeout" in log and "ran longer than 1s" in log
    assert not (tmp_path / "logs" / "t[i=0].log").exists()


class JsonArraySink:
    """A sink that builds its file whole: parts as records arrive, one file at the end."""

    def __init__(self, run_dir, recipe):
        self.parts = run_dir / "array-parts"
        self.parts.mkdir(exist_ok=True)
        self.final = run_dir / "results.array.json"

    def write(self, b):
        n = len(list(self.parts.iterdir()))
        with atomic_output(self.parts / f"{n:06d}.json") as tmp:
            tmp.write_text(json.dumps(b.records))

    def close(self, status):
        records = [r for part in sorted(self.parts.iterdir()) for r in json.loads(part.read_text())]
        with atomic_output(self.final) as tmp:
            tmp.write_text(json.dumps({"status": status, "records": records}))


class BrokenSink(_Broken):
    def __init__(self, run_dir, recipe):
        super().__init__()


def test_hook_toolkit_register_sinks(toolkit_pm, register_plugin, tmp_path):
    class SinkPlugin:
        @toolkit.hookimpl
        def toolkit_register_sinks(self, registry):
            registry.add("array", JsonArraySink)
            registry.add("broken", BrokenSink)

    register_plugin(SinkPlugin(), "array-sink")
    recipe, plugins = prepare(
        {
            "recipe": {"name": "sinks", "plugins": ["toolkit.conformance"]},
            "run": {"workers": 2},
            "output": {"formats": ["jsonl", "array", "csv"]},
            "task": [{"name": "sq", "uses": "conformance.square", "matrix": {"x": {"range": [0, 12]}}}],
        },
        plugins=toolkit_pm,
    )
    result = execute(recipe, plugins, output=tmp_path)
    assert result.status == "succeeded"
    written = json.loads((result.run_dir / "results.array.json").read_text())
    assert written["status"] == "succeeded"
    assert sorted(r["value"] for r in written["records"]) == [x * x for x in range(12)]
    assert len(read_csv(result.run_dir / "results.csv")) == 13


def test_a_sink_that_fails_ends_the_run_with_its_reason_and_keeps_the_records(run_recipe, tmp_path):
    plugin = tmp_path / "broken_sink.py"
    plugin.write_text(
        "import toolkit\n"
        "class Broken:\n"
        "    def __init__(self, run_dir, recipe):\n"
        "        self.n = 0\n"
        "    def write(self, batch):\n"
        "        self.n += batch.n\n"
        "        if self.n > 3:\n"
        "            raise OSError('disk on fire')\n"
        "    def close(self, status):\n"
        "        pass\n"
        "@toolkit.hookimpl\n"
        "def toolkit_register_sinks(registry):\n"
        "    registry.add('broken', Broken)\n"
    )
    res = run_recipe(
        f"""
        [recipe]
        name = "sinks"
        plugins = ["toolkit.conformance", "{plugin}"]
        [run]
        executor = "process"
        workers = 1
        [output]
        formats = ["jsonl", "broken"]
        [[task]]
        name = "sq"
        uses = "conformance.square"
        matrix = {{ x = {{ range = [0, 30] }} }}
        """,
        via="cli",
    )
    message = "plugin 'broken_sink' failed in sink 'broken' (writing): OSError: disk on fire"
    assert res.exit_code == 2 and message in res.stderr and "Traceback" not in res.stderr
    manifest = tomllib.loads((res.run_dir / "manifest.toml").read_text())
    assert manifest["status"] == "failed" and manifest["reason"] == message
    assert 4 <= len(res.records) < 30  # what arrived before the failure is kept
    assert all(r["status"] == "ok" for r in res.records)


def test_an_unknown_format_is_a_usage_error(toolkit_pm, tmp_path):
    from toolkit.errors import ToolkitError

    with pytest.raises(ToolkitError, match="parquet") as info:
        recipe, plugins = prepare(
            {
                "recipe": {"name": "sinks", "plugins": ["toolkit.conformance"]},
                "output": {"formats": ["parquet"]},
                "task": [{"name": "sq", "uses": "conformance.square", "params": {"x": 1}}],
            },
            plugins=toolkit_pm,
        )
        execute(recipe, plugins, output=tmp_path)
    assert info.value.exit_code == 2
    assert not (tmp_path / "sinks").exists()
