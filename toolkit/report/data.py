"""What a report shows, read from a run directory alone (manifest.toml, results.jsonl,
logs/): it works on any run, finished or still going, and on a copy of one.

:func:`collect` returns one JSON-ready dict. Instances are stored by column (one list
per field, an index per row) rather than one object per instance: 100,000 instances
then cost a few MB of JSON that compresses well, and the browser reads them into
arrays, never into 100,000 DOM nodes.
"""

from __future__ import annotations

import calendar
import io
import json
import operator
import os
import time
from pathlib import Path
from typing import Any

from toolkit.records import FAILED_STATUSES, STATUSES
from toolkit.store.rundir import RESULTS, RunDir

#: failures listed with their traceback; the rest are counted by error type
MAX_FAILURES = 100
#: the slowest instances listed
SLOWEST = 20
#: longest text kept of a traceback, an error message, a param value
MAX_TRACEBACK = 20_000
MAX_MESSAGE = 2_000
MAX_PARAM = 80
#: more distinct workers than this (one process per instance): lanes are packed slots
MAX_LANES = 64

_STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
_seconds: dict[str, float] = {}


def parse_utc(text: Any) -> float | None:
    """``2026-11-25T20:30:00.123456Z`` as a ``time.time()`` value; the seconds part is
    cached, since the records of a run share few distinct seconds (this is the hot loop
    of a 100,000-instance report)."""
    if not isinstance(text, str) or len(text) < 20:
        return None
    head = text[:19]
    base = _seconds.get(head)
    if base is None:
        try:
            base = float(calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")))
        except ValueError:
            return None
        if len(_seconds) > 100_000:
            _seconds.clear()
        _seconds[head] = base
    try:  # ".123456Z"
        return base + float(text[19:-1]) if len(text) > 21 else base
    except ValueError:
        return base


_FIELDS = (
    "task",
    "instance",
    "key",
    "status",
    "started",
    "duration_s",
    "worker",
    "attempts",
    "peak_rss_mib",
    "params",
    "error",
)
_scan = json.JSONDecoder().scan_once


def _record(line: str) -> dict[str, Any] | None:
    """A line that the fast path refused: a record with fields missing, or no record."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and (rec.get("key") or rec.get("instance")) else None


def _value_text(key: Any) -> str:
    text = key[1] if type(key) is tuple else str(key)
    return text if len(text) <= MAX_PARAM else text[: MAX_PARAM - 1] + "…"


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def read_head(run: RunDir) -> tuple[dict[str, Any], str]:
    """The manifest (the run's own description): its sound fields, and what is wrong with
    the others ('' when nothing is). Raises RunError only when there is no manifest: a
    damaged one still gets a report of what can be read."""
    from toolkit.store.history import read_checked

    return read_checked(run)


def _lanes(workers: list[int], starts: list[float | None], ends: list[float | None], names: list[str]):
    """Lane of every row, and the lane labels. One lane per worker process; when there
    are more processes than :data:`MAX_LANES` (the process executor starts one per
    instance) rows are packed into the fewest slots that never overlap."""
    if len(names) <= MAX_LANES:
        first: dict[int, float] = {}
        for w, s in zip(workers, starts, strict=True):
            if w >= 0 and s is not None and (w not in first or s < first[w]):
                first[w] = s
        order = sorted(range(len(names)), key=lambda w: (first.get(w, float("inf")), names[w]))
        lane_of = {w: i for i, w in enumerate(order)}
        return [lane_of[w] if w >= 0 else -1 for w in workers], [names[w] for w in order]
    import heapq

    rows = sorted((s, i) for i, s in enumerate(starts) if s is not None)
    free: list[tuple[float, int]] = []  # (end, slot)
    spare: list[int] = []
    lanes = [-1] * len(starts)
    count = 0
    for s, i in rows:
        while free and free[0][0] <= s:
            heapq.heappush(spare, heapq.heappop(free)[1])
        if spare:
            slot = heapq.heappop(spare)
        else:
            slot, count = count, count + 1
        lanes[i] = slot
        end = ends[i]
        heapq.heappush(free, (end if end is not None else s, slot))
    return lanes, [f"slot {n + 1}" for n in range(count)]


def collect(run_dir: str | os.PathLike[str], *, status: str | None = None) -> dict[str, Any]:
    """The data of the report of one run directory (see the module's docstring).

    ``status``: the run's status when the caller knows it better than the manifest
    (``toolkit ui`` and ``toolkit report`` pass ``dead`` for a killed run)."""
    run = RunDir(Path(run_dir))
    manifest, damage = read_head(run)
    if damage:
        status = "damaged"
        reason = manifest.get("reason")
        manifest["reason"] = f"{damage}; the run's reason: {reason}" if reason else damage
    resolved = manifest.get("resolved")
    resolved = resolved if isinstance(resolved, dict) else {}
    tables = resolved.get("task")
    task_tables = [t for t in tables if isinstance(t, dict)] if isinstance(tables, list) else []

    task_names = [str(t.get("name")) for t in task_tables]
    task_index = {n: i for i, n in enumerate(task_names)}
    worker_index: dict[Any, int] = {}
    param_index: dict[str, int] = {}
    param_values: list[dict[Any, int]] = []  # per param: value (or ("", text)) -> code
    param_cols: list[list[int]] = []

    row_of: dict[str, int] = {}  # content key -> row: a later record of an instance replaces it
    ids: list[str] = []
    tasks: list[int] = []
    statuses: list[int] = []
    starts: list[float | None] = []
    durs: list[float | None] = []
    workers: list[int] = []
    attempts: list[int] = []
    rss: list[float | None] = []
    cached_rows: set[int] = set()
    errors: dict[int, Any] = {}
    fields = operator.itemgetter(
        "task",
        "instance",
        "key",
        "status",
        "started",
        "duration_s",
        "worker",
        "attempts",
        "peak_rss_mib",
        "params",
        "error",
    )

    # bound methods, looked up once: this loop runs once per instance
    ids_append, tasks_append, statuses_append = ids.append, tasks.append, statuses.append
    starts_append, durs_append, workers_append = starts.append, durs.append, workers.append
    attempts_append, rss_append, status_code = attempts.append, rss.append, _STATUS_CODE.get

    path = run.path / RESULTS
    lines = open(path, encoding="utf-8", errors="replace") if path.exists() else io.StringIO()  # noqa: SIM115
    with lines:
        for line in lines:
            # the C scanner directly: json.loads costs as much again around it (100,000 times)
            try:
                rec = _scan(line, 0)[0]
                task, inst, key, st, started, dur, worker, att, peak, params, error = fields(rec)
            except (StopIteration, ValueError, TypeError, KeyError):
                rec = _record(line)
                if rec is None:
                    continue  # a torn last line, or not a record
                task, inst, key, st, started, dur, worker, att, peak, params, error = (
                    rec.get(k) for k in _FIELDS
                )
            code = status_code(st)
            if code is None:
                continue  # not a record toolkit wrote (edited by hand): passed over, as `toolkit show` does
            t = task_index.get(task)
            if t is None:
                t = task_index[str(task)] = len(task_names)
                task_names.append(str(task))
            w = worker_index.get(worker, -1) if worker is not None else -1
            if w < 0 and worker is not None:
                w = worker_index[worker] = len(worker_index)
            start = parse_utc(started)
            dur = dur if type(dur) is float or type(dur) is int else None
            att = att if type(att) is int else 0
            peak = peak if type(peak) is float or type(peak) is int else None
            key = key or inst
            i = row_of.get(key)
            if i is None:
                i = row_of[key] = len(ids)
                ids_append(str(inst))
                tasks_append(t)
                statuses_append(code)
                starts_append(start)
                durs_append(dur)
                workers_append(w)
                attempts_append(att)
                rss_append(peak)
                for pcol in param_cols:
                    pcol.append(-1)
            else:  # a later record of the same instance (a resumed run) replaces the row
                ids[i], tasks[i], statuses[i], starts[i] = str(inst), t, code, start
                durs[i], workers[i], attempts[i], rss[i] = dur, w, att, peak
                errors.pop(i, None)
                cached_rows.discard(i)
                for pcol in param_cols:
                    pcol[i] = -1
            if error or st in FAILED_STATUSES:
                errors[i] = error
            if rec.get("cached"):
                cached_rows.add(i)
            if type(params) is dict:
                for name, value in params.items():
                    p = param_index.get(name)
                    if p is None:
                        p = param_index[name] = len(param_cols)
                        param_values.append({})
                        param_cols.append([-1] * len(ids))
                    # strings and ints are their own dictionary keys ("3" and 3 stay apart);
                    # other values go by their JSON text, worked out once per distinct value
                    vt = type(value)
                    vkey = value if vt is str or vt is int else ("", _short(value, MAX_PARAM))
                    codes = param_values[p]
                    c = codes.get(vkey)
                    if c is None:
                        c = codes[vkey] = len(codes)
                    param_cols[p][i] = c
    n = len(ids)
    failed_rows = [i for i in sorted(errors) if STATUSES[statuses[i]] in FAILED_STATUSES]
    # a cached record is a copy of a record of an earlier run (its time, its worker): it
    # did not run in this one, so it has no place on this run's timeline, span or lanes
    worker_names = list(worker_index)
    if cached_rows:
        for i in cached_rows:
            starts[i] = None
            workers[i] = -1
        used = sorted({w for w in workers if w >= 0})
        renumber = {w: k for k, w in enumerate(used)}
        workers = [renumber.get(w, -1) for w in workers]
        worker_names = [worker_names[w] for w in used]

    known = [s for s in starts if s is not None]
    t0 = min(known) if known else None
    ends = [s + d if s is not None and d is not None else s for s, d in zip(starts, durs, strict=True)]
    lanes, lane_names = _lanes(workers, starts, ends, worker_names)

    log_names = _log_names(run, ids)
    summary = _summary(manifest, status, statuses, n)
    data: dict[str, Any] = {
        "format": 1,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "summary": summary,
        "tasks": _tasks(task_names, task_tables, tasks, statuses, starts, ends, durs, rss),
        "statuses": list(STATUSES),
        "t0": t0,
        "lanes": lane_names,
        "columns": {
            "id": ids,
            "task": tasks,
            "status": statuses,
            # microseconds from t0: integers are shorter than floats in JSON
            "start": [-1 if s is None or t0 is None else round((s - t0) * 1e6) for s in starts],
            "dur": [-1 if d is None else round(d * 1e6) for d in durs],
            "lane": lanes,
            "attempts": attempts,
            "rss": [-1 if r is None else round(r * 10) for r in rss],  # tenths of MiB
            "cached": sorted(cached_rows),
        },
        "params": {
            "names": list(param_index),
            "values": [[_value_text(k) for k in v] for v in param_values],
            "codes": param_cols,
        },
        "logs": log_names,
        "slowest": _slowest(durs, cached_rows),
        "failures": _failures(failed_rows, errors, ids, statuses),
    }
    return data


def _summary(manifest: dict[str, Any], status: str | None, statuses: list[int], n: int) -> dict[str, Any]:
    counts = dict(manifest.get("counts") or {})
    live = manifest.get("status") == "running"
    if live or status == "damaged" or not any(counts.get(s) for s in STATUSES):  # count what is on disk
        seen = dict.fromkeys(STATUSES, 0)
        for code in statuses:
            seen[STATUSES[code]] += 1
        counts.update(seen)
        if isinstance(counts.get("total"), int):
            counts["not_run"] = max(0, counts["total"] - n)
    keep = (
        "run_id",
        "recipe",
        "recipe_path",
        "started",
        "finished",
        "duration_s",
        "scheduled_for",
        "resumed",
        "host",
        "toolkit",
        "python",
        "platform",
        "executor",
        "executor_reason",
        "workers",
        "start_method",
        "reason",
        "overrides",
        "plugins",
    )
    out = {k: manifest[k] for k in keep if k in manifest}
    out["status"] = status or str(manifest.get("status", "unknown"))
    out["live"] = out["status"] == "running"
    out["counts"] = counts
    resolved = manifest.get("resolved")
    recipe = resolved.get("recipe") if isinstance(resolved, dict) else None
    description = recipe.get("description") if isinstance(recipe, dict) else None
    if isinstance(description, str) and description:
        out["description"] = description
    return out


def _tasks(
    names: list[str],
    tables: list[dict[str, Any]],
    tasks: list[int],
    statuses: list[int],
    starts: list[float | None],
    ends: list[float | None],
    durs: list[float | None],
    rss: list[float | None],
) -> list[dict[str, Any]]:
    k = len(names)
    counts = [dict.fromkeys(STATUSES, 0) for _ in range(k)]
    durations: list[list[float]] = [[] for _ in range(k)]
    first: list[float | None] = [None] * k
    last: list[float | None] = [None] * k
    peak: list[float | None] = [None] * k
    ran = [0] * k  # instances with a start in this run (cached ones have none)
    for t, st, s, e, d, r in zip(tasks, statuses, starts, ends, durs, rss, strict=True):
        counts[t][STATUSES[st]] += 1
        if s is not None:
            ran[t] += 1
        if d is not None:
            durations[t].append(d)
        if s is not None and (first[t] is None or s < first[t]):
            first[t] = s
        if e is not None and (last[t] is None or e > last[t]):
            last[t] = e
        if r is not None and (peak[t] is None or r > peak[t]):
            peak[t] = r
    by_name = {str(t.get("name")): t for t in tables}
    out = []
    for i, name in enumerate(names):
        table = by_name.get(name, {})
        ordered = sorted(durations[i])
        done = sum(counts[i].values())
        span = (last[i] - first[i]) if first[i] is not None and last[i] is not None else None
        out.append(
            {
                "name": name,
                "uses": table.get("uses", ""),
                "needs": list(table.get("needs") or []),
                "counts": counts[i],
                "done": done,
                "p50": _percentile(ordered, 50),
                "p95": _percentile(ordered, 95),
                "max": ordered[-1] if ordered else None,
                "mean": sum(ordered) / len(ordered) if ordered else None,
                "busy_s": sum(ordered),
                "span_s": span,
                "throughput": ran[i] / span if span else None,
                "peak_rss_mib": peak[i],
            }
        )
    return out


def _slowest(durs: list[float | None], cached: set[int]) -> list[int]:
    """The slowest instances that ran in this run (a cached one did not)."""
    import heapq

    rows = (i for i, d in enumerate(durs) if d is not None and i not in cached)
    return heapq.nlargest(SLOWEST, rows, key=durs.__getitem__)


def _failures(rows: list[int], errors: dict[int, Any], ids: list[str], statuses: list[int]) -> dict[str, Any]:
    by_type: dict[str, int] = {}
    listed = []
    for i in rows:
        error = errors.get(i) if isinstance(errors.get(i), dict) else {}
        kind = str(error.get("type") or STATUSES[statuses[i]])
        by_type[kind] = by_type.get(kind, 0) + 1
        if len(listed) < MAX_FAILURES:
            listed.append(
                {
                    "row": i,
                    "type": kind,
                    "message": _short(str(error.get("message") or ""), MAX_MESSAGE),
                    "traceback": _short(str(error.get("traceback") or ""), MAX_TRACEBACK),
                }
            )
    return {
        "total": len(rows),
        "types": sorted(([t, c] for t, c in by_type.items()), key=lambda tc: (-tc[1], tc[0])),
        "listed": listed,
    }


def _log_names(run: RunDir, ids: list[str]) -> dict[str, str]:
    """``{row: file name}`` of the rows that have a log in ``logs/``. The directory is
    listed once; a name is worked out per row only when there are logs at all."""
    try:
        present = set(os.listdir(run.logs))
    except OSError:
        return {}
    if not present:
        return {}
    out = {}
    for i, instance in enumerate(ids):
        name = run.log_path(instance).name
        if name in present:
            out[str(i)] = name
    return out
