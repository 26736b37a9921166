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
