"""A killed Manager process (the pool's result queue): one line naming the cause, exit 2,
a manifest that says ``failed``, the records so far intact, and ``--resume`` finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faults_helpers import manifest, marks, only_run, recipe_text, run_toolkit, strict_records, toolkit_cmd

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the Manager in /proc")


def first_child(pid: int) -> int:
    """The pool's Manager: the first process the run starts (before its workers)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(text[0]) if text else 0


def test_a_killed_manager_fails_the_run_cleanly(folder):
    (folder / "r.toml").write_text(
        recipe_text("r", marks(200, log="side", seconds=0.02), run='executor = "pool"')
    )
    proc = subprocess.Popen(
        toolkit_cmd("run", "r.toml", "-q"), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        results = folder / "out" / "r"
        while time.monotonic() < deadline:
            done = list(results.glob("*/results.jsonl"))
            if done and done[0].stat().st_size > 0:
                break
            time.sleep(0.02)
        manager = first_child(proc.pid)
        assert manager
        os.kill(manager, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = err.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("toolkit: error: the pool's result queue is gone")
    run = only_run(folder / "out", "r")
    meta = manifest(run)
    assert meta["status"] == "failed" and "the pool's result queue is gone" in meta["reason"]
    before = strict_records(run / "results.jsonl")
    assert 0 < len(before) < 200
    res = run_toolkit(folder, "run", "r.toml", "--resume", "-q")
    assert res.returncode == 0, res.stderr
    after = strict_records(run / "results.jsonl")
    assert after[: len(before)] == before  # nothing written before was touched
    assert sorted(r["value"] for r in after if r["status"] == "ok") == list(range(200))
    assert manifest(run)["status"] == "succeeded"
