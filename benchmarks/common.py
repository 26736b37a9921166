"""Shared by the benchmark cases: running the toolkit and the baselines, tables, noise."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKERS = 2


@dataclass
class Config:
    reps: int = 3
    quick: bool = False
    work: Path = Path("/tmp/toolkit-bench")
    python: str = sys.executable
    verbose: bool = False
    keep: bool = False


@dataclass
class Target:
    name: str  # what is judged, e.g. "toolkit / joblib throughput"
    value: float | None  # the measured figure
    goal: str  # e.g. ">= 1.00x"
    ok: bool | None  # None: could not be judged (a baseline missing)
    shown: str = ""  # the value as printed

    def verdict(self) -> str:
        return "-" if self.ok is None else ("PASS" if self.ok else "MISS")


@dataclass
class CaseResult:
    key: str
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""

    def target(self, name: str, value: float | None, goal: str, ok: bool | None, shown: str = "") -> None:
        if not shown:
            shown = "n/a" if value is None else f"{value:.2f}"
        self.targets.append(Target(name, value, goal, ok, shown))


class BenchError(RuntimeError):
    pass


# -- statistics and tables ------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values: list[float], fmt: str = ".2f") -> str:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return ""
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def fmt_table(headers: list[str], rows: list[list[str]]) -> str:
    cols = list(zip(*([headers, *rows]), strict=False))
    widths = [max(len(str(c)) for c in col) for col in cols]

    def line(r: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |",
    ]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def num(v: float | None, fmt: str = ",.0f") -> str:
    return "-" if v is None else format(v, fmt)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- running things -----------------------------------------------------------------


def have_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def toolkit_script() -> list[str]:
    """The venv's console script beside this interpreter (no shim), else ``python -m toolkit``."""
    script = Path(sys.executable).parent / "toolkit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "toolkit"]


def run_json(
    cmd: list[str], *, timeout: float = 900, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Run ``cmd`` (it prints one JSON object last); add ``e2e_s``, its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    res = json.loads(lines[-1])
    res["e2e_s"] = wall
    return res


def baseline(case: str, method: str = "", **opts: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "baselines.py"), case]
    if method:
        cmd.append(method)
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    res = run_json(cmd)
    if not res.get("check", True):
        raise BenchError(f"baseline {case} {method}: wrong results")
    return res


def write_recipe(cfg: Config, name: str, body: str) -> Path:
    """A recipe folder under the work dir with bench_tasks.py beside the recipe."""
    folder = cfg.work / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "bench_tasks.py", folder / "bench_tasks.py")
    text = (
        f'[recipe]\nname = "{name}"\nplugins = ["bench_tasks.py"]\n'
        f'[output]\ndir = "{(folder / "runs").as_posix()}"\n{body}'
    )
    path = folder / "recipe.toml"
    path.write_text(text)
    return path


def toolkit_run(
    cfg: Config, recipe: Path, *args: str, timeout: float = 1800, env: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """``toolkit run RECIPE`` in a fresh process through launch.py; returns ``e2e_s``
    (the whole command), ``in_run_s`` (run start to run finish, from the hooks),
    ``maxrss_mib`` (the main process's peak), the hooks' memory figures and the run dir."""
    stats = recipe.parent / "stats.json"
    launch = recipe.parent / "launch.json"
    for p in (stats, launch):
        p.unlink(missing_ok=True)
    full_env = dict(os.environ, TOOLKIT_BENCH_STATS=str(stats), TOOLKIT_BENCH_LAUNCH=str(launch))
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    cmd = [sys.executable, str(HERE / "launch.py"), "run", str(recipe), "-q", "--progress", "off", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(
            f"toolkit run {recipe} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    res: dict[str, Any] = {"e2e_s": wall}
    if launch.exists():
        res.update(json.loads(launch.read_text()))
    if not stats.exists():
        raise BenchError(f"toolkit run {recipe}: the bench hooks left no stats (is bench_tasks.py loaded?)")
    res.update(json.loads(stats.read_text()))
    if res.get("status") != "succeeded":
        raise BenchError(f"toolkit run {recipe}: status {res.get('status')}")
    return res


def read_results(run_dir: str | Path) -> list[dict[str, Any]]:
    with open(Path(run_dir) / "results.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def check_results(
    run_dir: str | Path, n: int, value_sum: Any = None, cleanup: bool = True
) -> list[dict] | None:
    """Every instance has one ok record (and the values add up); then drop the run dir."""
    count = 0
    total = 0
    keys = set()
    ok = True
    with open(Path(run_dir) / "results.jsonl", "rb") as f:
        for line in f:
            rec = json.loads(line)
            count += 1
            keys.add(rec["key"])
            ok = ok and rec["status"] == "ok"
            if value_sum is not None:
                total += rec["value"]
    if count != n or len(keys) != n or not ok:
        raise BenchError(f"{run_dir}: {count} records, {len(keys)} keys, all ok: {ok}; expected {n}")
    if value_sum is not None and total != value_sum:
        raise BenchError(f"{run_dir}: values add up to {total}, expected {value_sum}")
    if cleanup:
        shutil.rmtree(run_dir, ignore_errors=True)
    return None


def sum_of_squares(n: int) -> int:
    return (n - 1) * n * (2 * n - 1) // 6


# -- the machine and its noise ------------------------------------------------------


def cpu_ticks() -> tuple[int, int, int]:
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0, 1
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    total = sum(v[:8])
    return total - idle - steal, steal, total


def cpu_probe_mloops() -> float:
    best = float("inf")
    for _ in range(3):
        t0, acc = time.perf_counter(), 0
        for i in range(1_000_000):
            acc = (acc + i * i) % 1_000_003
        best = min(best, time.perf_counter() - t0)
    return 1 / best


def wait_for_quiet(max_wait_s: float, window_s: float = 3.0, threshold: float = 0.15) -> tuple[float, float]:
    tck = os.sysconf("SC_CLK_TCK")
    t0 = time.perf_counter()
    while True:
        b0 = cpu_ticks()[0]
        time.sleep(window_s)
        busy = (cpu_ticks()[0] - b0) / tck / window_s
        waited = time.perf_counter() - t0
        if busy < threshold or waited >= max_wait_s:
            return waited, busy


class Noise:
    """CPU that processes outside this benchmark used while a case ran, and steal."""

    def __init__(self, probe: bool = True) -> None:
        self.do_probe = probe

    def __enter__(self) -> Noise:
        import resource

        self._res = resource
        self.probe = cpu_probe_mloops() if self.do_probe else 0.0
        self.t0 = time.perf_counter()
        self.c0 = cpu_ticks()
        self.own0 = self._own()
        return self

    def _own(self) -> float:
        r = self._res.getrusage(self._res.RUSAGE_CHILDREN)
        s = self._res.getrusage(self._res.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime

    def __exit__(self, *exc: object) -> None:
        tck = os.sysconf("SC_CLK_TCK")
        self.wall = time.perf_counter() - self.t0
        busy1, steal1, total1 = cpu_ticks()
        busy0, steal0, total0 = self.c0
        own = self._own() - self.own0
        self.foreign = max(0.0, (busy1 - busy0) / tck - own) / max(self.wall, 1e-9)
        self.steal = (steal1 - steal0) / max(1, total1 - total0)

    def line(self) -> str:
        return (
            f"noise: other processes used {self.foreign:.2f} of {os.cpu_count()} cores on average; "
            f"steal {self.steal:.1%}; CPU probe {self.probe:.1f} M loops/s before; case wall {self.wall:.0f} s"
        )


def machine() -> dict[str, Any]:
    import platform
    from importlib import metadata

    versions = {}
    for p in ("toolkit", "joblib", "loky", "mpire", "psutil", "dask", "distributed", "toolkit-dask"):
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    model, mem_gib = "?", 0.0
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    parallel = shutil.which("parallel")
    par_version = None
    if parallel:
        out = subprocess.run([parallel, "--version"], capture_output=True, text=True).stdout
        par_version = out.splitlines()[0] if out else None
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "toolkit"], capture_output=True, text=True
    )
    return dict(
        python=sys.version.split()[0],
        implementation=platform.python_implementation(),
        kernel=platform.release(),
        cpus=os.cpu_count(),
        cpu_model=model,
        mem_gib=mem_gib,
        packages=versions,
        gnu_parallel=par_version,
        commit=(commit.stdout.strip() or "?") + ("+changes" if dirty.stdout.strip() else ""),
        started=time.strftime("%Y-%m-%d %H:%M:%S %z"),
        load=os.getloadavg(),
    )
