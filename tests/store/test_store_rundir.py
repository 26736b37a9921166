"""The run directory on its own: ids, the latest pointer, atomic files, torn tails."""

from __future__ import annotations

import json
import os
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.errors import RunError
from toolkit.store.rundir import (
    RunDir,
    atomic_write,
    cut_torn_tail,
    find_run,
    new_run_id,
    read_records,
    runs_of,
)


def test_run_ids_sort_in_time_order_and_look_as_the_spec_says():
    a, b = new_run_id(1_800_000_000), new_run_id(1_800_000_001)
    assert a < b
    date, clock, tail = a.split("-")
    assert len(date) == 8 and len(clock) == 6 and len(tail) == 4
    int(tail, 16)


def test_create_makes_logs_and_points_latest(tmp_path):
    run = RunDir.create(tmp_path, "r")
    assert run.logs.is_dir()
    assert (tmp_path / "r" / "latest").resolve() == run.path.resolve()
    assert os.readlink(tmp_path / "r" / "latest") == run.run_id  # relative: the folder can move
    second = RunDir.create(tmp_path, "r")
    assert (tmp_path / "r" / "latest").resolve() == second.path.resolve()


def test_create_with_a_taken_id_is_refused(tmp_path):
    RunDir.create(tmp_path, "r", "fixed")
    with pytest.raises(RunError, match="already exists"):
        RunDir.create(tmp_path, "r", "fixed")


def test_manifest_is_replaced_atomically_and_drops_none(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.write_manifest({"status": "running", "finished": None, "counts": {"total": 3, "x": None}})
    assert run.read_manifest() == {"status": "running", "counts": {"total": 3}}
    run.write_manifest({"status": "succeeded"})
    assert run.read_manifest() == {"status": "succeeded"}
    assert sorted(p.name for p in run.path.iterdir()) == ["logs", "manifest.toml"]  # no temp file left


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "m.toml"
    atomic_write(path, b"old")

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.toml"]


def test_read_manifest_errors_are_user_errors(tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        RunDir(tmp_path).read_manifest()
    (tmp_path / "manifest.toml").write_text("status = ")
    with pytest.raises(RunError, match="damaged"):
        RunDir(tmp_path).read_manifest()


def test_read_records_passes_over_torn_and_garbled_lines(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"a": 1}\n\nnot json\n[1, 2]\n{"a": 2}\n{"a": 3, "b"')
    assert list(read_records(path)) == [{"a": 1}, {"a": 2}]
    assert list(read_records(tmp_path / "missing.jsonl")) == []


def test_cut_torn_tail(tmp_path):
    path = tmp_path / "f"
    assert cut_torn_tail(path) == 0  # missing
    path.write_bytes(b"")
    assert cut_torn_tail(path) == 0
    path.write_bytes(b"a\nb\n")
    assert cut_torn_tail(path) == 0
    path.write_bytes(b"a\nb\nhal")
    assert cut_torn_tail(path) == 3 and path.read_bytes() == b"a\nb\n"
    path.write_bytes(b"no newline at all")
    assert cut_torn_tail(path) == 17 and path.read_bytes() == b""
    path.write_bytes(b"x,y\r\n1,2\r\n3,")
    assert cut_torn_tail(path, b"\r\n") == 2 and path.read_bytes() == b"x,y\r\n1,2\r\n"


def test_cut_torn_tail_finds_a_newline_far_back(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"first\n" + b"x" * 200_000)
    assert cut_torn_tail(path) == 200_000
    assert path.read_bytes() == b"first\n"


@given(
    lines=st.lists(
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=20), max_size=3), max_size=8
    ),
    cut=st.integers(min_value=0, max_value=10_000),
    terminator=st.sampled_from([b"\n", b"\r\n"]),
)
def test_cutting_any_prefix_leaves_whole_lines_only(tmp_path_factory, lines, cut, terminator):
    """Whatever byte a writer was killed at, what stays is whole records, a prefix."""
    path = tmp_path_factory.mktemp("cut") / "results.jsonl"
    blob = b"".join(json.dumps(line).encode() + terminator for line in lines)
    path.write_bytes(blob[: min(cut, len(blob))])
    cut_torn_tail(path, terminator)
    kept = path.read_bytes()
    assert blob.startswith(kept)
    assert kept == b"" or kept.endswith(terminator)
    decoded = [json.loads(x) for x in kept.split(terminator) if x]
    assert decoded == lines[: len(decoded)]


def test_find_run_by_id_by_path_and_latest(tmp_path):
    first = RunDir.create(tmp_path, "r", "20260101-000000-aaaa")
    first.write_manifest({"status": "failed"})
    second = RunDir.create(tmp_path, "r", "20260102-000000-bbbb")
    second.write_manifest({"status": "succeeded"})
    assert find_run(tmp_path, "r").path.resolve() == second.path.resolve()
    assert find_run(tmp_path, "r", first.run_id).path == first.path
    assert find_run(tmp_path, "r", str(first.path)).path == first.path
    assert [p.name for p in runs_of(tmp_path / "r")] == [first.run_id, second.run_id]
    with pytest.raises(RunError, match=r"no run 'nope'.*latest runs: 20260101"):
        find_run(tmp_path, "r", "nope")
    with pytest.raises(RunError, match="no earlier run of recipe 'other'"):
        find_run(tmp_path, "other")


def test_find_run_survives_a_dangling_or_textual_latest(tmp_path):
    first = RunDir.create(tmp_path, "r", "20260101-000000-aaaa")
    first.write_manifest({"status": "failed"})
    latest = tmp_path / "r" / "latest"
    latest.unlink()
    latest.write_text(first.run_id + "\n")  # where symlinks are not allowed
    assert find_run(tmp_path, "r").path == first.path
    latest.unlink()
    latest.symlink_to("20990101-000000-gone")
    assert find_run(tmp_path, "r").path == first.path


def test_latest_records_keeps_the_last_record_of_each_key(tmp_path):
    run = RunDir.create(tmp_path, "r")
    lines = [
        {"key": "a", "status": "failed"},
        {"key": "b", "status": "ok"},
        {"key": "a", "status": "ok"},
        {"status": "ok"},  # no key: not an instance record
    ]
    run.results_path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    latest = run.latest_records()
    assert list(latest) == ["a", "b"]
    assert latest["a"]["status"] == "ok"


def test_manifest_toml_is_plain_toml(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.write_manifest({"resolved": {"task": [{"name": "t", "params": {"x": [1, 2]}}]}, "format": 1})
    assert tomllib.loads(run.manifest_path.read_text())["resolved"]["task"][0]["params"]["x"] == [1, 2]
