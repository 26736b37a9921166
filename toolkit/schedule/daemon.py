"""The ``toolkit schedule`` loop: fire recipes, watch their runs, stop cleanly.

One thread. It sleeps in ``select`` on a self-pipe that ``signal.set_wakeup_fd`` writes
to, so SIGCHLD (a run ended), SIGTERM and SIGINT wake it at once; otherwise it wakes for
the next due slot, and at least once a second to notice edited recipe files.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import attrs

from toolkit.errors import ToolkitError
from toolkit.schedule import children
from toolkit.schedule.firing import Decision, Timetable, decide
from toolkit.schedule.recipes import Scheduled, file_key, read_scheduled
from toolkit.schedule.state import RecipeState, Running, StateDir, iso
from toolkit.store.runid import new_run_id

#: the longest sleep: how often recipe files are checked for changes
TICK = 1.0
#: after the grace period, SIGTERM each run's group and wait this long before SIGKILL:
#: longer than the 5 s ``toolkit run`` gives its tasks, so the run can mark itself interrupted
TERM_WAIT = 10.0


@attrs.define
class Job:
    """One recipe's runtime state in the daemon."""

    recipe: Scheduled
    table: Timetable
    key: tuple[int, int, int] | None
    state: RecipeState
    proc: subprocess.Popen | None = None  # None while running: a run adopted from a previous daemon
    started_mono: float = 0.0

    @property
    def name(self) -> str:
        return self.recipe.name

    def queue_cap(self) -> int:
        return max(1, self.recipe.schedule.max_catchup)


def _now() -> datetime:
    return datetime.now(UTC)


class Daemon:
    def __init__(
        self,
        recipes: list[Scheduled],
        state_dir: StateDir,
        *,
        grace: float = 30.0,
        plugins: tuple[str, ...] = (),
        out: TextIO | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.recipes = recipes
        self.store = state_dir
        self.grace = grace
        self.plugins = plugins
        self.out = out or sys.stderr
        self.now = clock
        self.jobs: list[Job] = []
        self.stop_requests = 0
        self.stop_signal = "an error"
        self._pipe: tuple[int, int] | None = None

    # -- output ------------------------------------------------------------
    def event(self, kind: str, text: str, **fields: Any) -> None:
        """A plain line for people, and a JSON line in ``log.jsonl``."""
        t = self.now()
        with contextlib.suppress(OSError, ValueError):
            print(f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')} {text}", file=self.out, flush=True)
        self.store.log({"time": iso(t), "event": kind, **fields})

    def save(self, job: Job) -> None:
        self.store.save(job.name, str(job.recipe.path), job.state)

    # -- the loop ----------------------------------------------------------
    def run(self) -> int:
        self.store.lock()
        try:
            self._install_signals()
            try:
                self.start()
                while not self.stop_requests:
                    self.step()
                    self.sleep(self.next_wake())
            finally:
                self.shutdown()
        finally:
            self._restore_signals()
            self.store.unlock()
        return 0

    def start(self) -> None:
        now = self.now()
        for r in self.recipes:
            table = Timetable(r.schedule, r.name)
            try:
                state = self.store.load(r.name)
            except ValueError as exc:
                self.event("error", f"{r.name}: {exc}; starting afresh", recipe=r.name, message=str(exc))
                state = None
            if state is None:  # never scheduled here before: nothing was missed
                state = RecipeState(handled_until=now - table.offset)
            job = Job(recipe=r, table=table, key=file_key(r.path), state=state)
            self.jobs.append(job)
            if state.running is not None:
                self._adopt(job)
            self.save(job)
        pid = os.getpid()
        self.event(
            "daemon_started",
            f"toolkit schedule (pid {pid}) started: {len(self.jobs)} recipe(s), state in {self.store.path}",
            pid=pid,
            recipes=[
                {"name": j.name, "path": str(j.recipe.path), **j.recipe.schedule.to_table()}
                for j in self.jobs
            ],
            state=str(self.store.path),
        )
        for job in self.jobs:
            spec = job.recipe.schedule
            upcoming = job.table.upcoming(now, 1)
            when = upcoming[0].isoformat() if upcoming else "never"
            with contextlib.suppress(OSError, ValueError):
                print(
                    f"  {job.name}: {spec.describe()}, catchup {spec.catchup}, overlap {spec.overlap};"
                    f" next run {when}",
                    file=self.out,
                    flush=True,
                )

    def _adopt(self, job: Job) -> None:
        running = job.state.running
        assert running is not None
        if children.is_our_run(running.pid, running.run_id):
            self.event(
                "adopted",
                f"{job.name}: run {running.run_id} (pid {running.pid}) from before the restart still runs",
                recipe=job.name,
                run_id=running.run_id,
                pid=running.pid,
            )
        else:
            self._finished(job, None, while_down=True)

    def step(self) -> None:
        now = self.now()
        self.reload_changed(now)
        self.reap()
        for job in self.jobs:
            self.fire(job, now)

    def next_wake(self) -> float:
        now = self.now()
        wake = TICK
        for job in self.jobs:
            slot = job.state.next_firing
            if slot is not None:
                wake = min(wake, (slot + job.table.offset - now).total_seconds())
        return max(wake, 0.001)

    # -- firing ------------------------------------------------------------
    def fire(self, job: Job, now: datetime) -> None:
        d: Decision = decide(job.table, job.state.handled_until, now)
        if d.missed is not None:
            m = d.missed
            count = "more than 10000" if m.count is None else str(m.count)
            self.event(
                "missed",
                f"{job.name}: {count} slot(s) from {iso(m.first)} to {iso(m.last)} missed while the scheduler"
                f" was down or asleep; not run (catchup = {job.recipe.schedule.catchup!r})",
                recipe=job.name,
                first=iso(m.first),
                last=iso(m.last),
                count=m.count,
                catchup=job.recipe.schedule.catchup,
            )
        changed = d.handled_until != job.state.handled_until or d.next_slot != job.state.next_firing
        busy = job.state.running is not None or bool(job.state.queued)
        overlap = job.recipe.schedule.overlap
        for slot in d.fire:
            if busy and overlap == "skip":
                self._skip(job, slot, f"the previous run ({self._running_id(job)}) is still going")
            elif busy and len(job.state.queued) >= job.queue_cap():
                self._skip(job, slot, f"{len(job.state.queued)} firing(s) already wait (the queue is full)")
            else:
                job.state.queued.append(slot)
                if busy:
                    self.event(
                        "queued",
                        f"{job.name}: slot {iso(slot)} queued behind {self._running_id(job)}",
                        recipe=job.name,
                        scheduled=iso(slot),
                        queued=len(job.state.queued),
                    )
        job.state.handled_until = d.handled_until
        job.state.next_firing = d.next_slot
        if d.fire or changed:
            self.save(job)
        self.start_next(job)

    def _running_id(self, job: Job) -> str:
        return job.state.running.run_id if job.state.running else "a queued run"

    def _skip(self, job: Job, slot: datetime, why: str) -> None:
        self.event(
            "skipped",
            f"{job.name}: slot {iso(slot)} skipped: {why} (overlap = {job.recipe.schedule.overlap!r})",
            recipe=job.name,
            scheduled=iso(slot),
            reason=why,
        )

    def start_next(self, job: Job) -> None:
        if self.stop_requests or job.state.running is not None or not job.state.queued:
            return
        slot = job.state.queued.pop(0)
        run_id = new_run_id()
        # saved before the start: a crash in between loses this run rather than repeating it
        job.state.last_firing, job.state.last_run_id = slot, run_id
        self.save(job)
        started = self.now()
        try:
            proc = children.start_run(
                job.recipe.path,
                slot=slot,
                run_id=run_id,
                plugins=self.plugins,
                overrides=job.recipe.overrides,
            )
        except OSError as exc:
            msg = f"cannot start run {run_id} for slot {iso(slot)}: {exc}"
            self.event("error", f"{job.name}: {msg}", recipe=job.name, scheduled=iso(slot), message=msg)
            return
        job.proc, job.started_mono = proc, time.monotonic()
        job.state.running = Running(run_id=run_id, pid=proc.pid, scheduled=slot, started=started)
        self.save(job)
        late = (started - slot - job.table.offset).total_seconds()
        self.event(
            "started",
            f"{job.name}: run {run_id} started (slot {iso(slot)}, pid {proc.pid})",
            recipe=job.name,
            scheduled=iso(slot),
            started=iso(started),
            run_id=run_id,
            pid=proc.pid,
            late_s=round(late, 3),
        )

    # -- runs ending ----------------------------------------------------------
    def reap(self) -> None:
        for job in self.jobs:
            running = job.state.running
            if running is None:
                continue
            if job.proc is not None:
                code = job.proc.poll()
                if code is None:
                    continue
            elif children.is_our_run(running.pid, running.run_id):
                continue
            else:
                code = None
            self._finished(job, code)
            self.start_next(job)

    def _finished(self, job: Job, code: int | None, *, while_down: bool = False) -> None:
        running = job.state.running
        assert running is not None
        ended = self.now()
        duration: float | None
        if while_down:
            duration, text = None, "ended while the scheduler was down (exit code unknown)"
        else:
            if job.proc is not None:
                duration = time.monotonic() - job.started_mono
            else:
                duration = (ended - running.started).total_seconds()
            text = f"{children.describe_exit(code)} after {duration:.2f}s"
        status = _run_status(job.recipe.runs, running.run_id)
        if status:
            text += f": {status}"
        self.event(
            "finished",
            f"{job.name}: run {running.run_id} {text}",
            recipe=job.name,
            scheduled=iso(running.scheduled),
            started=iso(running.started),
            ended=None if while_down else iso(ended),
            run_id=running.run_id,
            pid=running.pid,
            exit_code=code,
            status=status,
            duration_s=None if duration is None else round(duration, 3),
        )
        job.state.running, job.proc = None, None
        self.save(job)
        self._after_run(job, running.run_id)

    def _after_run(self, job: Job, run_id: str) -> None:
        """Retention ([output] keep), and the report and notification of a killed run."""
        from toolkit.schedule.after_run import after_firing

        try:
            lines = after_firing(job.recipe.path, run_id, job.recipe.overrides)
        except Exception as exc:  # the scheduler outlives whatever goes wrong here
            lines = [f"after run {run_id}: {type(exc).__name__}: {exc}"]
        for line in lines:
            self.event("after_run", f"{job.name}: {line}", recipe=job.name, run_id=run_id, message=line)

    # -- recipe files -------------------------------------------------------
    def reload_changed(self, now: datetime) -> None:
        for job in self.jobs:
            key = file_key(job.recipe.path)
            if key == job.key:
                continue
            job.key = key
            given = job.recipe.given
            if key is None:
                self.event(
                    "error", f"{job.name}: {given} is gone; keeping its last schedule", recipe=job.name
                )
                continue
            try:
                new = read_scheduled(given, job.recipe.overrides)
            except Exception as exc:  # a bad edit, or a loader bug: the daemon goes on either way
                msg = exc.message if isinstance(exc, ToolkitError) else f"{type(exc).__name__}: {exc}"
                self.event(
                    "error", f"{job.name}: {msg}; keeping the last good version", recipe=job.name, message=msg
                )
                continue
            if new.name != job.name:
                msg = f"{given}: the recipe was renamed to {new.name!r}; restart the scheduler to apply that"
                self.event("error", f"{job.name}: {msg}", recipe=job.name, message=msg)
                continue
            old = job.recipe.schedule
            job.recipe = new
            if new.schedule != old:
                job.table = Timetable(new.schedule, new.name)
                # the new times start now: a changed schedule has missed nothing
                job.state.handled_until = max(job.state.handled_until, now - job.table.offset)
                job.state.next_firing = job.table.next_slot(job.state.handled_until)
                self.save(job)
                self.event(
                    "reloaded",
                    f"{job.name}: {given} changed; now {new.schedule.describe()}",
                    recipe=job.name,
                    schedule=new.schedule.to_table(),
                )

    # -- signals and stopping ---------------------------------------------------
    def _install_signals(self) -> None:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._pipe = (r, w)
        self._old_wakeup = signal.set_wakeup_fd(w)
        self._old_handlers = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop),
                (signal.SIGINT, self._on_stop),
                (signal.SIGCHLD, lambda *_: None),  # only to wake the select
            )
        }

    def _restore_signals(self) -> None:
        for sig, handler in getattr(self, "_old_handlers", {}).items():
            signal.signal(sig, handler)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop_requests += 1
        self.stop_signal = signal.Signals(signum).name

    def sleep(self, timeout: float) -> None:
        assert self._pipe is not None
        r = self._pipe[0]
        select.select([r], [], [], max(timeout, 0.0))
        with contextlib.suppress(BlockingIOError):
            while os.read(r, 512):
                pass

    def _running(self) -> list[Job]:
        return [j for j in self.jobs if j.state.running is not None]

    def _wait_runs(self, seconds: float, *, until_requests: int) -> bool:
        """Reap until no run is left, ``seconds`` pass or a further signal; True if none is left."""
        deadline = time.monotonic() + seconds
        while True:
            self.reap()
            if not self._running():
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self.stop_requests >= until_requests:
                return False
            self.sleep(min(left, 0.2))  # adopted runs send no SIGCHLD: poll them

    def shutdown(self) -> None:
        """Stop firing; give running runs the grace period, then SIGTERM, then SIGKILL."""
        self.stop_requests = max(self.stop_requests, 1)
        running = self._running()
        sessions = [j.state.running.pid for j in running if j.proc is not None and j.state.running]
        why = self.stop_signal
        if running:
            ids = ", ".join(j.state.running.run_id for j in running if j.state.running)
            self.event(
                "stopping",
                f"stopping on {why}: waiting up to {self.grace:g}s for {len(running)} run(s): {ids}",
                running=ids.split(", "),
                grace_s=self.grace,
            )
        if not self._wait_runs(self.grace, until_requests=2):
            for sig, wait in ((signal.SIGTERM, TERM_WAIT), (signal.SIGKILL, 5.0)):
                for job in self._running():
                    assert job.state.running is not None
                    pid = job.state.running.pid
                    if job.proc is None and not children.is_our_run(pid, job.state.running.run_id):
                        continue
                    self.event(
                        "signalled",
                        f"{job.name}: sending {sig.name} to run {job.state.running.run_id} (pid {pid})",
                        recipe=job.name,
                        run_id=job.state.running.run_id,
                        signal=sig.name,
                    )
                    children.signal_run(pid, sig)
                if self._wait_runs(wait, until_requests=3 if sig == signal.SIGTERM else 99):
                    break
        for sid in sessions:  # what a run left behind in its session (Linux only)
            left = children.session_members(sid)
            if left:
                self.event("signalled", f"killing {len(left)} process(es) left by pid {sid}", pids=left)
                for pid in left:
                    children.signal_run(pid, signal.SIGKILL)
        self.event("daemon_stopped", f"toolkit schedule (pid {os.getpid()}) stopped", pid=os.getpid())


def _run_status(runs: Any, run_id: str) -> str | None:
    """How run ``run_id`` ended, as its manifest says (succeeded, failed, incomplete,
    interrupted), or None when that cannot be read."""
    if runs is None:
        return None
    import tomllib

    try:
        with open(Path(runs) / run_id / "manifest.toml", "rb") as f:
            status = tomllib.load(f).get("status")
    except (OSError, ValueError):
        return None
    return status if isinstance(status, str) else None
