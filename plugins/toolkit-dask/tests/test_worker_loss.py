"""Losing Dask workers mid-run, and Ctrl-C.

A task that crashes kills only its runner process (see the conformance suite). These
tests take the Dask worker itself away: from outside (the run goes on, Dask runs the
batch again elsewhere), and from a task that kills its Dask worker on a scheduler that
allows no failures (``KilledWorker``: recorded ``crashed``, or retried per ``retries``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

KILLERS = '''
import os
import signal
import time
from pathlib import Path

import toolkit


def kill_my_dask_worker(x: int, bad: int, marker_dir: str = "") -> int:
    """Kill the Dask worker (the runner's parent) when x == bad; only once with a marker."""
    if x == bad:
        marker = Path(marker_dir) / f"killed-{x}" if marker_dir else None
        if marker is None or not marker.exists():
            if marker is not None:
                marker.write_text("1")
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(10)  # the runner exits when it sees its parent gone
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(kill_my_dask_worker, name="killers.kill_my_dask_worker")
'''


def test_a_worker_killed_from_outside_mid_run_does_not_stop_the_run(run_recipe, cluster):
    victim_addr, victim_pid = sorted(cluster.worker_pids().items())[0]
    killed = threading.Event()

    def kill_soon():
        time.sleep(1.5)
        os.kill(victim_pid, signal.SIGKILL)
        killed.set()

    threading.Thread(target=kill_soon, daemon=True).start()
    res = run_recipe(f'''
        [recipe]
        name = "loss"
        plugins = ["toolkit.conformance"]
        [run]
        executor = "dask"
        [executor.dask]
        address = "{cluster.address}"
        [[task]]
        name = "s"
        uses = "conformance.sleep_for"
        params = {{ seconds = 0.5 }}
        matrix = {{ x = {{ range = [0, 12] }} }}
    ''')
    assert killed.is_set()
    assert res.exit_code == 0, res.stdout + res.stderr
    assert sorted(r["params"]["x"] for r in res.records) == list(range(12))
    assert all(r["status"] == "ok" for r in res.records)
    # the victim ran part of the run before it died; Dask ran what it lost elsewhere
    assert {r["worker"] for r in res.records} - {victim_addr}


#: the LocalCluster's scheduler gives up on a task at the first worker death
STRICT = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


def _killer_recipe(retries: int, marker_dir: str, n: int) -> str:
    return f'''
        [recipe]
        name = "killers"
        plugins = ["killers.py"]
        [run]
        executor = "dask"
        keep_going = true
        [executor.dask]
        processes = true  # runners are children of Dask worker processes (not of the toolkit)
        [[task]]
        name = "k"
        uses = "killers.kill_my_dask_worker"
        params = {{ bad = 5, marker_dir = "{marker_dir}" }}
        retries = {retries}
        matrix = {{ x = {{ range = [0, {n}] }} }}
    '''


def test_killed_worker_is_recorded_crashed(run_recipe):
    # 40 instances: the scheduler sends batches of several; the one that fails is
    # split until the instance that takes workers down is found
    res = run_recipe(_killer_recipe(0, "", 40), files={"killers.py": KILLERS}, via="cli", env=STRICT)
    assert res.exit_code == 1, res.stdout + res.stderr
    by = {r["params"]["x"]: r for r in res.records}
    assert sorted(by) == list(range(40)) and len(res.records) == 40
    assert by[5]["status"] == "crashed"
    assert "KilledWorker" in by[5]["error"]["message"]
    # Dask (allowed-failures = 0) also gives up on the tasks that were waiting on the
    # dying worker: an instance alone in its batch is then charged too, with the reason
    charged = [r for r in res.records if r["status"] != "ok"]
    assert all(r["status"] == "crashed" and "KilledWorker" in r["error"]["message"] for r in charged)
    assert len(charged) <= 4  # at most what was in flight: two batches per worker


def test_killed_worker_is_retried_as_configured(run_recipe, tmp_path):
    res = run_recipe(
        _killer_recipe(1, str(tmp_path), 8), files={"killers.py": KILLERS}, via="cli", env=STRICT
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    by = {r["params"]["x"]: r for r in res.records}
    assert sorted(by) == list(range(8))
    assert by[5]["attempts"] == 2
    assert all(r["status"] == "ok" for r in res.records)


def _our_tasks(cluster) -> int:
    def count(dask_scheduler) -> int:
        return sum(str(k).startswith("toolkit-") for k in dask_scheduler.tasks)

    return cluster.client.run_on_scheduler(count)


STARTED = """
import time
from pathlib import Path

import toolkit


def announce_and_sleep(x: int, folder: str) -> int:
    (Path(folder) / f"started-{x}").write_text("")
    time.sleep(60)
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(announce_and_sleep, name="slow.announce_and_sleep")
"""


def _start_slow_run(tmp_path, address: str, name: str, n: int) -> subprocess.Popen:
    """``toolkit run`` of ``n`` slow instances on the cluster at ``address``, in a
    process of its own; each instance leaves ``started-X`` in ``tmp_path`` first."""
    (tmp_path / "slow.py").write_text(STARTED)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'''
[recipe]
name = "{name}"
plugins = ["slow.py"]
[run]
executor = "dask"
[executor.dask]
address = "{address}"
[[task]]
name = "s"
uses = "slow.announce_and_sleep"
params = {{ folder = "{tmp_path}" }}
matrix = {{ x = {{ range = [0, {n}] }} }}
''')
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", str(recipe), "--output", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_started(tmp_path, proc: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("started-*"))) < count:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)


def test_ctrl_c_cancels_the_runs_futures_and_stops_its_runners(cluster, tmp_path):
    proc = _start_slow_run(tmp_path, cluster.address, "interrupted", 6)
    try:
        _wait_until_started(tmp_path, proc, 2)  # both workers run an instance
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # the second Ctrl-C: kill now
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert "interrupted" in out
    deadline = time.monotonic() + 15
    while (cluster.runners(), _our_tasks(cluster)) != (0, 0):
        assert time.monotonic() < deadline, (cluster.runners(), _our_tasks(cluster))
        time.sleep(0.2)


def test_losing_the_scheduler_stops_the_run_with_a_clear_error(tmp_path, new_cluster):
    with new_cluster(tmp_path / "cluster", 1) as doomed:
        proc = _start_slow_run(tmp_path, doomed.address, "orphaned", 4)
        try:
            _wait_until_started(tmp_path, proc, 1)
            doomed.processes[0].kill()  # the scheduler
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 2, out + err
    assert "lost the connection to the Dask scheduler" in err
    assert "Traceback" not in err
