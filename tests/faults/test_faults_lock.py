"""One process at a time runs a run directory: the run lock (flock on ``<run>/.lock``),
released by the kernel however its holder ends. Liveness never trusts a pid alone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from faults_helpers import manifest, marks, only_run, recipe_text, run_toolkit, strict_records, toolkit_cmd


def lines_of(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_two_resumes_at_once_run_each_instance_once(folder):
    """Of two ``--resume`` started at the same instant, exactly one runs; the other says
    who holds the run. The instances that ran are counted with a file they write."""
    (folder / "stop").write_text("")
    (folder / "r.toml").write_text(
        recipe_text("r", marks(40, log="side", seconds=0.05, stop="stop"), run="keep_going = true")
    )
    assert run_toolkit(folder, "run", "r.toml", "-q").returncode == 1  # every instance failed
    (folder / "stop").unlink()
    run = only_run(folder / "out", "r")
    procs = [
        subprocess.Popen(
            toolkit_cmd("run", "r.toml", "--resume", "-q"),
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60)[1].decode() for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    refused = next(err for p, err in zip(procs, results, strict=True) if p.returncode == 2)
    assert re.search(rf"run {run.name} is in use by pid \d+ on ", refused), refused
    assert "Traceback" not in refused
    assert sorted(map(int, lines_of(folder / "side"))) == list(range(40))  # each once
    assert [r["status"] for r in strict_records(run / "results.jsonl")] == ["ok"] * 40
    assert len(strict_records(run / "attempts.jsonl")) == 40  # the first session's failures
    assert manifest(run)["status"] == "succeeded"


def test_a_killed_run_is_resumed_whatever_its_pid_has_become(folder):
    """SIGKILL a run: the kernel releases its lock at once. Its pid, given to another
    (live, unrelated) process, keeps neither ``--resume`` nor ``toolkit runs`` from
    seeing the run as dead; no ``--force`` needed."""
    (folder / "r.toml").write_text(recipe_text("r", marks(40, log="side", seconds=0.1)))
    proc = subprocess.Popen(toolkit_cmd("run", "r.toml", "-q"), cwd=folder, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(lines_of(folder / "side")) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = only_run(folder / "out", "r")
    text = (run / "manifest.toml").read_text()
    assert 'status = "running"' in text
    sleeper = subprocess.Popen(["sleep", "60"])  # the pid, reused
    try:
        (run / "manifest.toml").write_text(re.sub(r"(?m)^pid = \d+$", f"pid = {sleeper.pid}", text))
        listed = run_toolkit(folder, "runs", "--output", "out")
        assert re.search(rf"{run.name}.*dead", listed.stdout.decode()), listed.stdout
        res = run_toolkit(folder, "run", "r.toml", "--resume", "-q")
        assert res.returncode == 0, res.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    assert manifest(run)["status"] == "succeeded"
    ok = [r["value"] for r in strict_records(run / "results.jsonl") if r["status"] == "ok"]
    assert sorted(ok) == list(range(40))


def test_a_run_holds_its_lock_alone(folder):
    """Processes forked by a run (its workers, the pool's Manager) do not keep its lock:
    once the run's own process lets go (or dies), the run is free, whatever lives on."""
    from toolkit.store.lock import RunLock, is_locked

    lock = RunLock(folder).acquire()
    read, write = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: lives until the parent says
        os.close(write)
        os.write(ready_write, b"r")  # os.fork() has returned here: the fork handlers ran
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"r"
        assert is_locked(folder)
        lock.release()
        assert is_locked(folder) is False  # the child still lives
    finally:
        os.close(write)
        os.close(ready_read)
        os.waitpid(pid, 0)
    assert Path(folder / ".lock").read_text().startswith(f"pid {os.getpid()} on ")
