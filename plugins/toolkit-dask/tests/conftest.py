"""A real Dask cluster for the tests: ``dask scheduler`` and two ``dask worker`` processes,
all on 127.0.0.1, started once per session with bounded waits.

The workers run with ``TOOLKIT_DASK_NO_SHARED_FS=1``: they behave as if they were on
other machines, so recipe-relative plugin files reach them as uploaded source and
instance logs come back with the results.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import attrs
import pytest

STARTUP_SECONDS = 60
#: what the session's two workers declare: every test runs with tasks mapped to Dask
#: resources (CPU for all; MEMORY for those that ask for memory, which only the first has)
SESSION_RESOURCES = ("CPU=2,MEMORY=2e9", "CPU=1")


@attrs.define
class Cluster:
    address: str
    scheduler_file: str
    client: object
    processes: list[subprocess.Popen]
    log_dir: Path

    def worker_pids(self) -> dict[str, int]:
        return self.client.run(os.getpid)

    def runners(self) -> int:
        """Runner processes on the workers (toolkit.execution.subproc children)."""

        def count() -> int:
            import psutil

            return sum(
                "toolkit.execution.subproc" in " ".join(p.cmdline())
                for p in psutil.Process().children(recursive=True)
            )

        return sum(self.client.run(count).values())

    def wait_for_no_runners(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.runners():
            assert time.monotonic() < deadline, f"{self.runners()} runner processes left on the workers"
            time.sleep(0.1)

    def wait_for_workers(self, n: int = 2, timeout: float = STARTUP_SECONDS) -> None:
        self.client.wait_for_workers(n, timeout=timeout)
        deadline = time.monotonic() + timeout
        while len(self.client.nthreads()) > n and time.monotonic() < deadline:
            time.sleep(0.1)  # a restarted worker's old entry is still being removed


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=log.parent,  # not a source checkout: workers import the installed toolkit
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the nanny's worker and its runners too
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


@contextlib.contextmanager
def running_cluster(folder: Path, workers: int = 2, resources: tuple[str, ...] = (), **worker_env: str):
    """A ``dask scheduler`` and ``workers`` one-thread ``dask worker`` processes; the
    i-th declares ``resources[i]`` (``dask worker --resources``) when given."""
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler = ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
    scheduler += ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)]
    procs = [_start(scheduler, folder / "scheduler.log")]
    client = None
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start:\n{(folder / 'scheduler.log').read_text()}")
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written in one go, but be safe
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            worker = ["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file)]
            worker += ["--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"]
            worker += ["--death-timeout", "30", "--local-directory", str(folder / f"w{i}")]
            if i < len(resources):
                worker += ["--resources", resources[i]]
            procs.append(_start(worker, folder / f"worker{i}.log", env=worker_env))
        client = Client(address, timeout=30, set_as_default=False)
        client.wait_for_workers(workers, timeout=STARTUP_SECONDS)
        yield Cluster(address, str(scheduler_file), client, procs, folder)
    finally:
        if client is not None:
            client.close(timeout=10)
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask-cluster")
    with running_cluster(folder, 2, SESSION_RESOURCES, TOOLKIT_DASK_NO_SHARED_FS="1") as c:
        yield c


@pytest.fixture
def new_cluster():
    """``with new_cluster(folder, workers) as c:`` a cluster of the test's own."""
    return running_cluster


@pytest.fixture
def cluster(dask_cluster):
    """The session cluster, with both workers up (a test may have killed one)."""
    dask_cluster.wait_for_workers(2)
    return dask_cluster


@pytest.fixture(autouse=True)
def _load_the_plugin(monkeypatch):
    """Plugins come from entry points, as for users; from -p-like TOOLKIT_PLUGINS when
    the distribution is not installed (tests run from a source checkout)."""
    monkeypatch.delenv("TOOLKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("TOOLKIT_PLUGINS", raising=False)
    if not entry_points(group="toolkit.plugins", name="dask"):
        monkeypatch.setenv("TOOLKIT_PLUGINS", "toolkit_dask")
