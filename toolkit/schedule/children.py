"""The scheduler's runs as processes: start one, tell whether it is still ours, stop it.

Each run is ``python -m toolkit run RECIPE`` in a session of its own: a crash, a
Ctrl-C in the scheduler's terminal or a ``kill`` of the run's group reaches the run and
everything it started, never the scheduler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from toolkit.schedule.state import iso
from toolkit.store.runid import ENV_RUN_ID, ENV_SCHEDULED_FOR


def run_command(recipe: Path, plugins: tuple[str, ...] = (), overrides: tuple[str, ...] = ()) -> list[str]:
    args = [a for p in plugins for a in ("-p", p)]
    sets = [a for o in overrides for a in ("--set", o)]
    return [sys.executable, "-m", "toolkit", "run", *args, str(recipe), *sets]


def start_run(
    recipe: Path,
    *,
    slot: datetime,
    run_id: str,
    plugins: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
) -> subprocess.Popen:
    """Start one run; its output goes where the scheduler's goes. Raises OSError."""
    env = dict(os.environ)
    env[ENV_SCHEDULED_FOR] = iso(slot)
    env[ENV_RUN_ID] = run_id
    return subprocess.Popen(
        run_command(recipe, plugins, overrides),
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def is_our_run(pid: int, run_id: str) -> bool:
    """Whether ``pid`` is still the run ``run_id`` (a run left by a scheduler that died).

    On Linux the process's environment must carry our run id, so a reused pid is not
    mistaken for the run; elsewhere a live pid is taken at its word.
    """
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    environ = Path(f"/proc/{pid}/environ")
    if not Path("/proc/self/environ").exists():
        return True  # pragma: no cover - macOS
    try:
        data = environ.read_bytes()  # empty for a zombie
    except OSError:
        return False
    return f"{ENV_RUN_ID}={run_id}".encode() in data.split(b"\0")


def session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (Linux; elsewhere an empty list).

    A run's workers may move to process groups of their own, but they stay in the
    run's session, so this finds what a group kill would miss.
    """
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # fields after the parenthesised command: state ppid pgrp session ...
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 3 and int(fields[3]) == sid:
                pids.append(int(entry.name))
    return pids


def signal_run(pid: int, sig: int) -> None:
    """Signal the run's process group, and on Linux every other process of its session."""
    from toolkit.execution.procs import kill_group

    kill_group(pid, sig)
    if sig == signal.SIGKILL:
        for member in session_members(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, sig)


def describe_exit(code: int | None) -> str:
    if code is None:  # a run adopted from an earlier scheduler: not our child, no exit status
        return "ended (exit code unknown: an earlier scheduler started it)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited {code}"
