"""No process outlives its instance or the run, however the run ends; a worker's death is
noticed at once, whatever its task left running. Real processes, real signals; whether
a process still runs is read from /proc."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import LEAVERS, alive, linux_only, pids_in, wait_files, wait_gone

pytestmark = linux_only

METHODS = [m for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()]


def recipe(executor: str, task: str, matrix: str, params: str, *, workers: int = 2, extra: str = "") -> str:
    return f"""
        [recipe]
        name = "contain"
        plugins = ["leavers.py"]
        [run]
        executor = "{executor}"
        workers = {workers}
        {extra}
        [[task]]
        name = "t"
        uses = "{task}"
        params = {params}
        matrix = {matrix}
    """


def _start_run(folder) -> subprocess.Popen:
    """``toolkit run recipe.toml`` in ``folder``, in the background, quiet."""
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", "recipe.toml", "-q", "--progress", "off"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("executor", ["process", "pool"])
def test_a_daemon_a_task_starts_ends_with_its_instance(run_recipe, tmp_path, executor, kill_left):
    """A setsid daemon (double fork) left by a task is gone when its instance ends; the
    run does not wait for it (it would sleep a minute)."""
    folder = tmp_path / "pids"
    folder.mkdir()
    started = time.monotonic()
    result = run_recipe(
        recipe(executor, "leave.daemon", "{ x = [1, 2, 3] }", f'{{ folder = "{folder}" }}'),
        "-q",
        "--progress",
        "off",
        files={"leavers.py": LEAVERS},
        via="cli",
        timeout=50,
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sorted(r["value"]["x"] for r in result.records) == [1, 2, 3]
    pids = pids_in(wait_files(folder, "daemon-*", 3, timeout=1))
    kill_left.extend(pids)
    assert wait_gone(pids) == []
    assert time.monotonic() - started < 45  # a hang guard: each daemon sleeps 60 s


def test_in_a_pool_each_instance_ends_what_it_started(run_recipe, tmp_path):
    """One pool worker runs instances in batches of several: when each instance starts,
    the daemons of the instances before it are already gone."""
    folder = tmp_path / "pids"
    folder.mkdir()
    result = run_recipe(
        recipe(
            "pool", "leave.daemon", "{ x = { range = [0, 12] } }", f'{{ folder = "{folder}" }}', workers=1
        ),
        "-q",
        files={"leavers.py": LEAVERS},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [r["value"]["alive"] for r in result.records] == [[]] * 12
    assert len({r["worker"] for r in result.records}) == 1


@pytest.mark.parametrize("executor", ["process", "pool"])
def test_sigkill_of_the_run_leaves_no_task_process_behind(tmp_path, executor, kill_left):
    """SIGKILL of `toolkit run` while 4 `shell` tasks sleep: every sleep goes too."""
    folder = tmp_path / "pids"
    folder.mkdir()
    (tmp_path / "recipe.toml").write_text(
        f"""
[recipe]
name = "killed"
[run]
executor = "{executor}"
workers = 4
[[task]]
name = "sleepy"
uses = "shell"
params = {{ cmd = "echo $$ > {folder}/sleep-${{matrix.x}}; exec sleep 60", shell = true }}
matrix = {{ x = [1, 2, 3, 4] }}
"""
    )
    run = _start_run(tmp_path)
    try:
        pids = pids_in(wait_files(folder, "sleep-*", 4))
        kill_left.extend(pids)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    assert wait_gone(pids) == []
    assert _wait_unmarked(f"{run.pid}-") == []  # nor any other process of the run (the zygote)


NAPS = """
import os
import time

import toolkit


def nap(x: int, folder: str) -> int:
    with open(os.path.join(folder, f"nap-{x}"), "w") as f:
        f.write(f"{os.getpid()} {os.getppid()}")
    time.sleep(60)
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(nap, name="nap")
"""


@pytest.mark.parametrize("start_method", METHODS)
@pytest.mark.parametrize("executor", ["process", "pool"])
def test_sigkill_of_the_run_ends_its_python_workers_and_what_forked_them(
    tmp_path, executor, start_method, kill_left
):
    """Workers that run Python (no exec: their environment shows no run mark), and the
    process that forked them, whichever it is (a fork server, the zygote): gone with
    `toolkit run`."""
    folder = tmp_path / "pids"
    folder.mkdir()
    (tmp_path / "leavers.py").write_text(NAPS)
    (tmp_path / "recipe.toml").write_text(
        recipe(
            executor,
            "nap",
            "{ x = [1, 2, 3] }",
            f'{{ folder = "{folder}" }}',
            workers=3,
            extra=f'start_method = "{start_method}"',
        )
    )
    run = _start_run(tmp_path)
    try:
        pairs = [p.read_text().split() for p in wait_files(folder, "nap-*", 3)]
        pids = sorted({int(pid) for pair in pairs for pid in pair} - {run.pid})
        kill_left.extend(pids)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    assert wait_gone(pids) == []


def _marked(prefix: str) -> list[int]:
    """The processes whose environment carries a run mark that starts with ``prefix``."""
    needle = f"\0TOOLKIT_RUN_TOKEN={prefix}".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and alive(int(name)):
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle in b"\0" + f.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def _wait_unmarked(prefix: str, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _marked(prefix)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


KILLS_ITS_PARENT = """
import os
import signal
import time

import toolkit


def kill_parent(x: int, marker: str) -> int:
    if x == 1 and not os.path.exists(marker):  # once: a second attempt returns
        open(marker, "w").close()
        os.kill(os.getppid(), signal.SIGKILL)  # under fork: the zygote, not the run
        time.sleep(30)  # it dies with its parent
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(kill_parent, name="kill.parent")
"""


def test_process_instances_go_on_when_the_process_that_forks_them_dies(run_recipe, tmp_path):
    """Under fork, a process of its own (the zygote) forks the instances of `process`:
    killed mid-run, the instance it forked dies with it and the supervisor forks the rest
    itself. The instance is `crashed`, or, when the zygote died before it said it had
    forked it, runs again (as a batch whose pool worker died before it said it started)."""
    marker = tmp_path / "killed"
    result = run_recipe(
        recipe(
            "process",
            "kill.parent",
            "{ x = [0, 1, 2, 3] }",
            f'{{ marker = "{marker}" }}',
            workers=1,
            extra='start_method = "fork"',
        ),
        "-q",
        "--progress",
        "off",
        "--keep-going",
        files={"leavers.py": KILLS_ITS_PARENT},
        via="cli",
        timeout=25,  # the hang guard: the killer sleeps 30 s
    )
    assert marker.exists()
    statuses = {r["instance"]: r["status"] for r in result.records}
    assert statuses.pop("t[x=1]") in ("crashed", "ok"), result.stdout + result.stderr
    assert statuses == {"t[x=0]": "ok", "t[x=2]": "ok", "t[x=3]": "ok"}, result.stdout + result.stderr


def test_a_pool_worker_killed_under_a_living_grandchild_is_noticed_at_once(run_recipe, tmp_path, kill_left):
    """The worker's death is seen by its pidfd, not when the pipes its grandchild holds
    close (a minute later): the instance is `crashed`, the others run, the child is gone."""
    folder = tmp_path / "pids"
    folder.mkdir()
    result = run_recipe(
        recipe("pool", "leave.orphan_then_die", "{ x = [0, 1, 2, 3] }", f'{{ folder = "{folder}" }}'),
        "-q",
        "--progress",
        "off",
        "--keep-going",
        files={"leavers.py": LEAVERS},
        via="cli",
        timeout=40,  # the hang guard: the grandchild sleeps 60 s
    )
    statuses = {r["value"] if r["status"] == "ok" else r["instance"]: r["status"] for r in result.records}
    assert statuses == {0: "ok", "t[x=1]": "crashed", 2: "ok", 3: "ok"}, result.stdout + result.stderr
    pids = pids_in(wait_files(folder, "child-*", 1, timeout=1))
    kill_left.extend(pids)
    assert wait_gone(pids) == []


@pytest.mark.parametrize("start_method", METHODS)
def test_a_task_that_closes_every_inherited_fd_is_recorded_ok(run_recipe, tmp_path, start_method):
    """Under `process` the record travels through a pipe the task may close (and whose
    number a file it opens may then take): the record is still `ok`, the file untouched."""
    reopened = tmp_path / "reopened.txt"
    result = run_recipe(
        recipe(
            "process",
            "leave.close_fds",
            "{ x = [1, 2] }",
            f'{{ reopen = "{reopened}" }}',
            extra=f'start_method = "{start_method}"',
        ),
        "-q",
        "--progress",
        "off",
        files={"leavers.py": LEAVERS},
        via="cli",
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sorted((r["status"], r["value"]) for r in result.records) == [("ok", 10), ("ok", 20)]
    assert reopened.read_text() == ""
    assert not list(result.run_dir.glob(".outbox-*"))
    logs = sorted(p.read_text() for p in (result.run_dir / "logs").iterdir())
    assert all("closed 4" in text for text in logs) and len(logs) == 2


@pytest.mark.parametrize("executor", ["process", "pool"])
def test_a_run_leaves_no_child_behind(run_recipe, tmp_path, executor):
    """Once `toolkit run` (in this process) has returned, this process has no child it
    did not have before: no worker, no janitor, no daemon a task started."""
    from toolkit.execution.containment import children

    before = set(children(os.getpid()))
    result = run_recipe(
        recipe(
            executor,
            "leave.daemon",
            "{ x = [1, 2] }",
            f'{{ folder = "{tmp_path}" }}',
            extra='start_method = "fork"',
        ),
        "-q",
        files={"leavers.py": LEAVERS},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(children(os.getpid())) - before == set()


def janitors_of(pid: int) -> list[int]:
    """The janitor of the run whose supervisor is ``pid``: a child that leads its own
    process group and holds nothing but /dev/null (and a pidfd)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) != pid or int(fields[2]) != int(entry):
                continue
            fds = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
        except OSError:
            continue
        if all(target == "/dev/null" or "pidfd" in target for target in fds):
            found.append(int(entry))
    return found


def test_a_killed_janitor_is_replaced(tmp_path, kill_left):
    """kill -9 of the janitor, then SIGKILL of `toolkit run`: the supervisor started a
    new janitor, which ends every task process (they were all left running)."""
    folder = tmp_path / "pids"
    folder.mkdir()
    (tmp_path / "recipe.toml").write_text(
        f"""
[recipe]
name = "killed"
[run]
executor = "pool"
workers = 2
[[task]]
name = "sleepy"
uses = "shell"
params = {{ cmd = "echo $$ > {folder}/sleep-${{matrix.x}}; exec sleep 60", shell = true }}
matrix = {{ x = [1, 2] }}
"""
    )
    run = _start_run(tmp_path)
    try:
        pids = pids_in(wait_files(folder, "sleep-*", 2))
        kill_left.extend(pids)
        first = janitors_of(run.pid)
        assert len(first) == 1, first
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while janitors_of(run.pid) in ([], first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(janitors_of(run.pid)) == 1 and janitors_of(run.pid) != first
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    assert wait_gone(pids) == []
    assert _wait_unmarked(f"{run.pid}-") == []  # nor any other process of the run (the zygote)
