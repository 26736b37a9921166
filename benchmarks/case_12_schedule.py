"""Case 12: a long-running ``toolkit schedule``. One recipe with ``every = "1s"`` (a
no-op instance, ``[output] keep = 10``, so retention runs after each firing too) fired
FIRINGS times by one daemon; after each run ends, the daemon's resident memory (VmRSS)
and its open file descriptors (``/proc/PID/fd``).

Judged: the growth from the end of the first run (the modules a firing needs imported)
to the end of the last, RSS < 5 MiB and fds none. One session (not repeated: it is the
growth over many firings that counts). Linux only (``/proc``). There is no baseline: no
raw tool does what the daemon does in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from common import CaseResult, Config, toolkit_script, write_recipe

KEY = "12"
TITLE = "toolkit schedule: a daemon over many firings"

RECIPE = """keep = 10
[run]
executor = "pool"
workers = 1
[schedule]
every = "{every}"
[[task]]
name = "noop"
uses = "bench.noop"
"""


# (write_recipe ends the head with [output] dir = ...: the body goes on in that table)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    """Open fds, the fewest of a few looks: a run starting right then holds a pipe for a
    moment (Popen's error pipe), a leak stays."""
    counts = []
    for _ in range(3):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.02)
    return min(counts)


def run(cfg: Config) -> CaseResult:
    firings, every = (3, "250ms") if cfg.quick else (600, "1s")
    out = CaseResult(KEY, f'{TITLE}: every = "{every}", {firings} firings')
    if not sys.platform.startswith("linux"):
        out.skipped = "needs /proc (Linux)"
        return out
    recipe = write_recipe(cfg, "bench-schedule", RECIPE.format(every=every))
    state = recipe.parent / "state"
    log = state / "log.jsonl"
    log.unlink(missing_ok=True)
    cmd = [*toolkit_script(), "schedule", str(recipe), "--state", str(state), "--grace", "30s"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_BENCH_")}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=recipe.parent
    )
    samples: list[tuple[int, float, int]] = []  # finished runs, RSS MiB, fds
    statuses: dict[str, int] = {}
    skipped = 0
    t0 = time.perf_counter()
    deadline = t0 + firings * 4 + 60
    offset = 0
    try:
        while len(samples) < firings:
            if proc.poll() is not None:
                raise RuntimeError(f"toolkit schedule exited {proc.returncode} after {len(samples)} firings")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {len(samples)} of {firings} firings in {deadline - t0:.0f} s")
            time.sleep(0.05)
            if not log.exists():
                continue
            with open(log, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            offset += end
            for line in chunk[:end].splitlines():
                event = json.loads(line)
                if event["event"] == "skipped":
                    skipped += 1
                if event["event"] != "finished":
                    continue
                status = str(event.get("status"))
                statuses[status] = statuses.get(status, 0) + 1
                # the event is logged before the daemon's after-run work (retention):
                # sample once that is done, i.e. a little later
                time.sleep(0.1)
                samples.append((len(samples) + 1, _rss_mib(proc.pid), _fds(proc.pid)))
        wall = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    first, last = samples[0], samples[-1]
    peak_rss = max(s[1] for s in samples)
    peak_fds = max(s[2] for s in samples)
    grow = last[1] - first[1]
    fd_grow = last[2] - first[2]
    out.headers = ["toolkit schedule", "daemon RSS MiB", "daemon fds"]
    marks = sorted({m for m in (1, 2, 10, firings // 4, firings // 2, firings) if 1 <= m <= firings})
    for i in marks:
        n, rss, fds = samples[i - 1]
        out.rows.append([f"toolkit schedule, after run {n}", f"{rss:.1f}", f"{fds}"])
    out.target("daemon RSS growth, first run to last", grow, "< 5 MiB", grow < 5, f"{grow:+.2f} MiB")
    out.target("daemon fd growth, first run to last", fd_grow, "0", fd_grow <= 0, f"{fd_grow:+d}")
    out.notes.append(
        f"{firings} runs in {wall:.0f} s ({skipped} slots skipped: the previous run still going); "
        f"run statuses {statuses}; peak RSS {peak_rss:.1f} MiB, peak fds {peak_fds}"
    )
    out.data = {"firings": firings, "every": every, "samples": samples, "wall_s": wall, "skipped": skipped}
    return out
