"""Case 7: start-up. ``toolkit --help`` and ``toolkit plan recipes/pi.toml`` against
``python -c pass``, all run by this venv's interpreter or its console script directly
(no pyenv shim, no launcher): the mean of a batch of runs, median over repetitions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

from common import ROOT, CaseResult, Config, median, spread, toolkit_script

KEY = "7"
TITLE = "start-up: fresh processes"


def wall_of(cmd: list[str], runs: int) -> float | None:
    """Mean wall seconds of ``runs`` sequential runs; None if the command fails."""
    t0 = time.perf_counter()
    for _ in range(runs):
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        if proc.returncode != 0:
            return None
    return (time.perf_counter() - t0) / runs


def instructions(cmd: list[str]) -> int | None:
    """Instructions the command executes (valgrind's callgrind; None without valgrind):
    the same count however loaded the machine is, unlike its wall time."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    proc = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    return int(found.group(1)) if proc.returncode == 0 and found else None


def run(cfg: Config) -> CaseResult:
    runs = 2 if cfg.quick else 10
    tk = toolkit_script()
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("toolkit --help", [*tk, "--help"]),
        ("toolkit plan recipes/pi.toml", [*tk, "plan", os.path.join("recipes", "pi.toml")]),
    ]
    out = CaseResult(KEY, f"{TITLE}, {runs} runs per batch")
    samples: dict[str, list[float]] = {label: [] for label, _ in cases}
    broken = []
    for label, cmd in cases:  # warm the page cache; leave out what fails
        if wall_of(cmd, 1) is None:
            broken.append(label)
            out.notes.append(f"{' '.join(cmd)} failed (exit status not 0): left out")
    cases = [(label, cmd) for label, cmd in cases if label not in broken]
    for _ in range(cfg.reps):
        for label, cmd in cases:
            wall = wall_of(cmd, runs)
            samples[label].append(None if wall is None else wall * 1e3)
    base = median(samples["python -c pass"])
    out.headers = ["command", "wall ms", "/ python -c pass", "range ms"]
    for label, _ in cases:
        ms = median(samples[label])
        if ms is None:
            out.rows.append([label, "failed", "", ""])
            continue
        out.rows.append([label, f"{ms:.1f}", f"{ms / base:.2f}", spread(samples[label], ".1f")])
    instr = None
    if not cfg.quick:  # beside the walls: the instructions, which load does not move
        counts = {label: instructions(cmd) for label, cmd in cases[:2]}
        base_n, help_n = counts.get("python -c pass"), counts.get("toolkit --help")
        if base_n and help_n:
            out.notes.append(
                f"instructions (callgrind): python -c pass {base_n / 1e6:.1f} M, toolkit --help "
                f"{help_n / 1e6:.1f} M ({help_n / base_n:.2f}x)"
            )
            instr = counts
    helpms = median(samples["toolkit --help"])
    helpr = None if helpms is None else helpms / base
    out.target(
        "toolkit --help / python -c pass",
        helpr,
        "<= 3.0x",
        None if helpr is None else helpr <= 3.0,
        f"{helpr:.2f}x" if helpr else "",
    )
    out.notes.append(f"console script: {tk[0]}")
    out.data = {"ms": samples, "instructions": instr}
    return out
