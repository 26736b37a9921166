"""Compaction: one line per instance in results.jsonl, superseded lines in attempts.jsonl,
and a crash at any moment loses no record."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from toolkit.store.compact import ATTEMPTS, compact


def record(key: str, status: str, n: int) -> str:
    return json.dumps(
        {
            "task": "t",
            "instance": f"t[i={key}]",
            "key": key.rjust(20, "0"),
            "params": {},
            "status": status,
            "n": n,
        }
    )


def write_results(run: Path, keys: int, rounds: int) -> list[str]:
    lines = [
        record(str(k), "failed" if r < rounds - 1 else "ok", r) for r in range(rounds) for k in range(keys)
    ]
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    return lines


def test_one_line_per_instance_and_the_rest_in_attempts(tmp_path):
    lines = write_results(tmp_path, keys=5, rounds=3)
    assert compact(tmp_path) == 10
    results = (tmp_path / "results.jsonl").read_text().splitlines()
    attempts = (tmp_path / ATTEMPTS).read_text().splitlines()
    assert results == lines[10:]  # the final record of each instance, in order
    assert sorted(attempts) == sorted(lines[:10])
    assert compact(tmp_path) == 0  # nothing more to do: nothing rewritten
    assert (tmp_path / "results.jsonl").read_text().splitlines() == results


def test_a_crash_between_the_two_files_counts_nothing_twice(tmp_path):
    lines = write_results(tmp_path, keys=3, rounds=2)
    # the state a crash leaves after attempts.jsonl was written, before results.jsonl was
    (tmp_path / ATTEMPTS).write_text("\n".join(lines[:3]) + "\n")
    compact(tmp_path)
    assert (tmp_path / ATTEMPTS).read_text().splitlines() == lines[:3]
    assert (tmp_path / "results.jsonl").read_text().splitlines() == lines[3:]


def test_sigkill_during_compaction_loses_no_record(tmp_path):
    lines = write_results(tmp_path, keys=20_000, rounds=3)
    script = f"from toolkit.store.compact import compact; compact({str(tmp_path)!r})"
    proc = subprocess.Popen([sys.executable, "-c", script])
    time.sleep(0.15)  # somewhere in the middle, or after: both must hold
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    results = (tmp_path / "results.jsonl").read_text().splitlines()
    attempts = (tmp_path / ATTEMPTS).read_text().splitlines() if (tmp_path / ATTEMPTS).exists() else []
    assert set(results) | set(attempts) == set(lines), "a record was lost"
    compact(tmp_path)  # the next session's compaction finishes the job
    results = (tmp_path / "results.jsonl").read_text().splitlines()
    attempts = (tmp_path / ATTEMPTS).read_text().splitlines()
    assert results == lines[40_000:]
    assert sorted(attempts) == sorted(lines[:40_000])


def test_an_instance_is_its_id_whatever_its_keys_and_its_text(tmp_path):
    # a forced resume gives an instance new params, so a new key: the id decides
    ids = ['t[p=a", "key": "b]', "t[p=back\\slash]", "t[p=ünï 名]", "t[p=plain]"]
    lines = [
        json.dumps({"task": "t", "instance": iid, "key": f"{r}{n}".rjust(20, "0"), "status": "ok", "r": r})
        for r in range(2)
        for n, iid in enumerate(ids)
    ]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert compact(tmp_path) == 4
    assert (tmp_path / "results.jsonl").read_text().splitlines() == lines[4:]
    assert (tmp_path / ATTEMPTS).read_text().splitlines() == lines[:4]


def test_records_of_instances_the_recipe_no_longer_makes_move_aside(tmp_path):
    lines = write_results(tmp_path, keys=4, rounds=1)
    other = json.dumps({"task": "gone", "instance": "gone", "key": "9" * 20, "status": "ok"})
    (tmp_path / "results.jsonl").write_text("\n".join([*lines, other]) + "\n")
    assert compact(tmp_path, {"t": {"t[i=0]", "t[i=2]"}}) == 3
    assert (tmp_path / "results.jsonl").read_text().splitlines() == [lines[0], lines[2]]
    assert (tmp_path / ATTEMPTS).read_text().splitlines() == [lines[1], lines[3], other]
