"""What ``toolkit ui`` shows, as JSON-ready dicts, read from run directories and a
schedule state directory. It only reads: nothing here writes, starts or stops anything.

The server lives long and is asked the same things every second or two, so what can
be remembered is: a manifest by its (mtime, size), and for a live run how far
``results.jsonl`` was read and the counts so far (only the new lines are read again).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from toolkit.records import STATUSES
from toolkit.store.heads import read_head
from toolkit.store.history import DAMAGED, check_manifest, effective_status, parse_time, process_alive
from toolkit.store.rundir import LATEST, MANIFEST, RESULTS

#: what a recipe or run id in a URL may be: never a path
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# records are written in a fixed field order: "status" is followed by "value" (a nested
# "status" key inside params is not)
_STATUS = re.compile(rb'"status": "(ok|failed|timeout|crashed|skipped)", "value"')


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class Reader:
    """Run directories under ``output``, read with memory (see the module's docstring)."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = Path(output)
        # manifest -> (its stat key, its sound fields or None, what is wrong with it)
        self._heads: dict[Path, tuple[tuple[int, int] | None, dict[str, Any] | None, str]] = {}
        self._live: dict[Path, tuple[int, dict[str, int]]] = {}
        self._first_seen: dict[tuple[Path, float], tuple[float, int]] = {}  # see _rate
        self._lock = threading.Lock()

    # -- paths -----------------------------------------------------------------------
    def run_dir(self, recipe: str, run_id: str) -> Path | None:
        """The run directory for names from a URL, or None (never outside ``output``)."""
        if not (SAFE_NAME.fullmatch(recipe) and SAFE_NAME.fullmatch(run_id)) or run_id == LATEST:
            return None
        path = self.output / recipe / run_id
        return path if (path / MANIFEST).is_file() else None

    # -- manifests ---------------------------------------------------------------------
    def head(self, run_dir: Path) -> dict[str, Any] | None:
        """The manifest's fields that are as they should be (None when it cannot be read):
        a manifest edited by hand or cut short never takes a page down."""
        return self._read(run_dir)[0]

    def damage(self, run_dir: Path) -> str:
        """What is wrong with the run's manifest ('' when nothing is)."""
        return self._read(run_dir)[1]

    def _read(self, run_dir: Path) -> tuple[dict[str, Any] | None, str]:
        manifest = run_dir / MANIFEST
        key = _stat_key(manifest)
        with self._lock:
            cached = self._heads.get(manifest)
        if cached is not None and cached[0] == key and key is not None:
            return cached[1], cached[2]
        head, problem = read_head(run_dir), ""
        if head is None:
            problem = f"{MANIFEST} cannot be read (not TOML, or not UTF-8)"
        else:
            head, problems = check_manifest(head)
            problem = f"{MANIFEST}: {'; '.join(problems)}" if problems else ""
        with self._lock:
            self._heads[manifest] = (key, head, problem)
        return head, problem

    def status(self, run_dir: Path) -> str:
        """The run's status as the list shows it: ``dead`` for a killed run, ``damaged``
        for one whose manifest cannot be trusted."""
        head, problem = self._read(run_dir)
        if head is None or problem:
            return DAMAGED
        return effective_status(head, run_dir)

    def live_counts(self, run_dir: Path) -> dict[str, int]:
        """Counts by status of the records written so far, reading only new lines."""
        path = run_dir / RESULTS
        with self._lock:
            offset, counts = self._live.get(path, (0, dict.fromkeys(STATUSES, 0)))
        counts = dict(counts)
        try:
            size = path.stat().st_size
            if size < offset:  # rewritten (compacted at the end of a run): count again
                offset, counts = 0, dict.fromkeys(STATUSES, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(max(0, size - offset))
        except OSError:
            return counts
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next look
        for m in _STATUS.finditer(data, 0, end):
            counts[m.group(1).decode()] += 1
        with self._lock:
            self._live[path] = (offset + end, counts)
        return counts

    # -- the run list ------------------------------------------------------------------
    def run_entry(self, run_dir: Path) -> dict[str, Any] | None:
        head, problem = self._read(run_dir)
        status = self.status(run_dir)
        head = head or {}
        counts = dict(head.get("counts") or {})
        if status in ("running", "dead", DAMAGED):
            counts.update(self.live_counts(run_dir))
        return {
            "recipe": str(head.get("recipe") or run_dir.parent.name),
            "run_id": run_dir.name,
            "status": status,
            "reason": problem or head.get("reason"),
            "counts": counts,
            "started": head.get("started"),
            "finished": head.get("finished"),
            "duration_s": head.get("duration_s"),
            "scheduled_for": head.get("scheduled_for"),
            "executor": head.get("executor"),
            "host": head.get("host"),
        }

    def runs(self, recipe: str | None = None, status: str | None = None) -> dict[str, Any]:
        """Every run, newest first, and the recipes and statuses there are (for filters)."""
        entries = []
        recipes = []
        if self.output.is_dir():
            for base in sorted(self.output.iterdir()):
                if not base.is_dir() or base.name.startswith(".") or not SAFE_NAME.fullmatch(base.name):
                    continue
                found = False
                for run_dir in base.iterdir():
                    if run_dir.name == LATEST or run_dir.name.startswith(".") or not run_dir.is_dir():
                        continue
                    if not (run_dir / MANIFEST).is_file():
                        continue
                    found = True
                    if recipe and base.name != recipe:
                        continue
                    entry = self.run_entry(run_dir)
                    if entry is not None:
                        entries.append(entry)
                if found:
                    recipes.append(base.name)
        statuses = sorted({e["status"] for e in entries})
        if status:
            entries = [e for e in entries if e["status"] == status]
        entries.sort(key=lambda e: (parse_time(e.get("started")) or 0.0, e["run_id"]), reverse=True)
        return {"output": str(self.output), "recipes": recipes, "statuses": statuses, "runs": entries}

    # -- one run, live -------------------------------------------------------------------
    def progress(self, run_dir: Path) -> dict[str, Any]:
        """A run's progress: counts, done of total, rate and ETA while it runs."""
        entry = self.run_entry(run_dir) or {}
        head = self.head(run_dir) or {}
        counts = entry.get("counts") or {}
        total = counts.get("total")
        done = sum(counts.get(s, 0) for s in STATUSES)
        out = {**entry, "total": total, "done": done, "rate": None, "eta_s": None, "elapsed_s": None}
        if entry.get("status") == "running":
            # this session's start: a resumed run counts from its last resume
            resumed = parse_time((head.get("resumed") or [None])[-1])
            since = resumed or parse_time(head.get("started"))
            if since:
                now = time.time()
                elapsed = max(0.001, now - since)
                out["elapsed_s"] = round(elapsed, 1)
                rate = self._rate(run_dir, since, done, now) if resumed else done / elapsed
                out["rate"] = None if rate is None else round(rate, 3)
                if rate and isinstance(total, int):
                    out["eta_s"] = round(max(0, total - done) / rate, 1)
        return out

    def _rate(self, run_dir: Path, since: float, done: int, now: float) -> float | None:
        """Instances per second of a resumed session. Its records follow those of the
        sessions before it, which say nothing of its pace: the rate is measured from the
        first time this session was looked at (None until a second has passed)."""
        with self._lock:
            first = self._first_seen.setdefault((run_dir, since), (now, done))
        span = now - first[0]
        return (done - first[1]) / span if span >= 1.0 else None


class ReportCache:
    """Reports made on the fly (a live run, or one without a fresh ``report.html``),
    remembered by the state of the files they were made from."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._pages: OrderedDict[Path, tuple[Any, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, run_dir: Path, status: str) -> bytes:
        from toolkit.report.after_run import is_pending
        from toolkit.report.data import collect
        from toolkit.report.html import REPORT, render

        written = run_dir / REPORT
        state = (_stat_key(run_dir / RESULTS), _stat_key(run_dir / MANIFEST), status)
        results_key = state[0]
        if (
            status not in ("running", "dead")
            and written.is_file()
            and not is_pending(written)
            and (results_key is None or (_stat_key(written) or (0, 0))[0] >= results_key[0])
        ):
            return written.read_bytes()
        with self._lock:
            cached = self._pages.get(run_dir)
            if cached is not None and cached[0] == state:
                self._pages.move_to_end(run_dir)
                return cached[1]
        page = render(collect(run_dir, status=status), ui=True).encode("utf-8")
        with self._lock:
            self._pages[run_dir] = (state, page)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
        return page


def instance_log(run_dir: Path, instance: str) -> dict[str, Any]:
    """The log of one instance and its last record."""
    from toolkit.store.rundir import RunDir

    run = RunDir(run_dir)
    record = None
    for rec in run.records():
        if rec.get("instance") == instance:
            record = rec
    log = run.log_path(instance)
    try:
        if not log.resolve().is_relative_to(run_dir.resolve()):  # a link to elsewhere: not served
            raise FileNotFoundError(log)
        text = log.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        text = None
    return {"instance": instance, "record": record, "log": text, "log_name": log.name}


# -- schedules --------------------------------------------------------------------------------
#: bytes read from the end of the scheduler's log.jsonl
LOG_TAIL = 2_000_000
EVENTS_SHOWN = 10


def _tail_events(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LOG_TAIL))
            data = f.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > LOG_TAIL:
        lines = lines[1:]  # the first is a piece of a line
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def schedules(state: str | os.PathLike[str] | None, reader: Reader | None = None) -> dict[str, Any]:
    """Each scheduled recipe: next and last firing, last outcome, missed and skipped
    firings, from a ``toolkit schedule --state`` directory."""
    if state is None:
        return {"state": None, "daemon": None, "recipes": []}
    state = Path(state)
    recipes: dict[str, dict[str, Any]] = {}
    for file in sorted((state / "recipes").glob("*.json")):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("recipe"), str):
            continue
        recipes[data["recipe"]] = {
            "recipe": data["recipe"],
            "path": data.get("path"),
            "next_firing": data.get("next_firing"),
            "last_firing": data.get("last_firing"),
            "last_run_id": data.get("last_run_id"),
            "running": data.get("running"),
            "queued": data.get("queued") or [],
            "last_outcome": None,
            "missed": [],
            "skipped": [],
            "errors": [],
            "schedule": None,
        }
    daemon: dict[str, Any] = {"pid": None, "running": False}
    try:
        pid = int((state / "lock").read_text().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and process_alive(pid):
        daemon = {"pid": pid, "running": True}
    for event in _tail_events(state / "log.jsonl"):
        kind = event.get("event")
        if kind == "daemon_started":
            daemon["started"] = event.get("time")
            for r in event.get("recipes") or []:
                if isinstance(r, dict) and r.get("name") in recipes:
                    recipes[r["name"]]["schedule"] = {k: v for k, v in r.items() if k not in ("name", "path")}
            continue
        entry = recipes.get(event.get("recipe"))  # type: ignore[arg-type]
        if entry is None:
            continue
        if kind == "finished":
            entry["last_outcome"] = event
        elif kind == "missed":
            entry["missed"].append(event)
        elif kind == "skipped":
            entry["skipped"].append(event)
        elif kind == "error":
            entry["errors"].append(event)
    for entry in recipes.values():
        # one "missed" event stands for a stretch of missed firings ("count" of them)
        # (null: more than the daemon counts, shown as "N+")
        counts = [e.get("count") for e in entry["missed"]]
        entry["missed_firings"] = sum(_count(c) for c in counts)
        entry["missed_more"] = None in counts and bool(counts)
        for key in ("missed", "skipped", "errors"):
            entry[f"{key}_total"] = len(entry[key])
            entry[key] = entry[key][-EVENTS_SHOWN:][::-1]
        outcome = entry["last_outcome"]
        if outcome is not None and reader is not None and outcome.get("run_id"):
            run_dir = reader.run_dir(entry["recipe"], str(outcome["run_id"]))
            if run_dir is not None:
                outcome["status"] = reader.status(run_dir)
    return {"state": str(state), "daemon": daemon, "recipes": list(recipes.values())}
