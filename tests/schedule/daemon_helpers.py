"""Starting, watching and cleaning up real ``toolkit schedule`` processes in tests.

Every wait is bounded: a daemon that hangs fails the test instead of the test run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# A stand-in for `toolkit run`, used only by the tests of the daemon's own mechanics
# (crash and restart, stubborn runs, edits). It records what it does in runs.jsonl.
FAKE_RUN = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    from pathlib import Path

    recipe = Path(sys.argv[1])
    conf_file = recipe.parent / "fake.json"
    conf = json.loads(conf_file.read_text()) if conf_file.exists() else {}

    def note(**kw):
        line = dict(pid=os.getpid(), sid=os.getsid(0), t=time.time(), run_id=os.environ["TOOLKIT_RUN_ID"],
                    scheduled=os.environ["TOOLKIT_SCHEDULED_FOR"], **kw)
        with open(recipe.parent / "runs.jsonl", "a") as f:
            f.write(json.dumps(line) + "\\n")

    if conf.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = None
    if conf.get("grandchild"):  # like a pool worker: its own process group, deaf to SIGTERM
        code = "import os, signal, time; os.setpgid(0, 0); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
        grandchild = subprocess.Popen([sys.executable, "-c", code]).pid
    note(event="start", grandchild=grandchild)
    deadline = time.monotonic() + conf.get("sleep", 2.5)
    release = recipe.parent / "release"  # the test creates it to end the run early
    while time.monotonic() < deadline and not release.exists():
        time.sleep(0.02)
    note(event="end")
    """
)

# Runs `toolkit schedule` with the stand-in above as the run command.
DRIVER = textwrap.dedent(
    """
    import sys
    from toolkit.schedule import children, daemon

    fake = sys.argv[1]
    children.run_command = lambda recipe, plugins=(), overrides=(): [sys.executable, fake, str(recipe)]
    daemon.TERM_WAIT = 1.0
    from toolkit.cli import main

    sys.exit(main(["schedule", *sys.argv[2:]]))
    """
)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_jsonl(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie, judged by the OS, not by the daemon."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return False
        return text[text.rfind(")") + 2] != "Z"
    try:  # pragma: no cover - macOS
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_members(sid: int) -> list[int]:
    from toolkit.schedule.children import session_members as members

    return [pid for pid in members(sid) if alive(pid)]


class Daemon:
    """One ``toolkit schedule`` process and its state directory."""

    def __init__(self, folder: Path, recipes: list[Path], *args: str, fake: bool = False) -> None:
        self.folder = folder
        self.state = folder / "state"
        self.out_path = folder / f"daemon-{time.monotonic_ns()}.out"
        if fake:
            fake_run = folder / "fake_run.py"
            fake_run.write_text(FAKE_RUN)
            cmd = [sys.executable, "-c", DRIVER, str(fake_run)]
        else:
            cmd = [sys.executable, "-m", "toolkit"]
        if not fake:
            cmd.append("schedule")
        cmd += ["--state", str(self.state), *args, *map(str, recipes)]
        with open(self.out_path, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, kind: str | None = None) -> list[dict]:
        events = read_jsonl(self.state / "log.jsonl")
        return [e for e in events if kind is None or e["event"] == kind]

    def wait_events(self, kind: str, n: int = 1, timeout: float = 15) -> list[dict]:
        try:
            return wait_for(
                lambda: len(self.events(kind)) >= n and self.events(kind), timeout, f"{n} {kind} events"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the daemon said:\n{self.output()}") from None

    def output(self) -> str:
        return self.out_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not stop within {timeout}s:\n{self.output()}") from None

    def cleanup(self) -> None:
        """Hang guard: whatever happened, leave no process behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for e in self.events("started"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(e["pid"], signal.SIGKILL)
            for pid in session_members(e["pid"]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
