"""Resuming a run in place: what is left to do, and whether the recipe still matches.

An instance is identified across runs by its content key (task name, ``uses``, task
version and resolved params; see :func:`toolkit.records.instance_key`). A resumed run
reads ``results.jsonl``, keeps the *last* record of every key, and runs again:

- ``--resume``: every instance whose last record is not ``ok`` (failed, timed out,
  crashed, skipped) or that has no record (it never ran);
- ``--retry-failed``: only those whose last record failed, timed out or crashed, and
  the skipped ones (their needs are run again); instances that never ran stay not run.

A run can only be resumed by a recipe that makes the same instances: the manifest keeps
a digest of each task's identity (name, uses, version, params, matrix, needs); a task
whose digest changed, appeared or disappeared refuses the resume unless ``--force``.
What does not change instances (retries, timeouts, workers, the executor, isolation,
output formats) may change freely between sessions.
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any

from toolkit.errors import RunError
from toolkit.records import FAILED_STATUSES, STATUSES, instance_key
from toolkit.store.lock import RunLock
from toolkit.store.rundir import RunDir

#: the task-table keys that decide which instances a task makes
IDENTITY_KEYS = ("uses", "params", "matrix", "needs")


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def task_digests(recipe: Any, runtimes: list[Any]) -> dict[str, str]:
    """``{task name: digest of what decides its instances}``, in recipe order."""
    out = {}
    for rt in runtimes:
        table = rt.spec.to_table()
        identity = {k: table.get(k) for k in IDENTITY_KEYS}
        identity.update(name=rt.spec.name, uses=rt.spec.uses, version=rt.version)
        out[rt.spec.name] = _digest(identity)
    return out


def recipe_digest(digests: dict[str, str]) -> str:
    """One digest for the instances of the whole recipe."""
    return _digest(sorted(digests.items()))


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """``["estimate (changed)", "extra (added)"]``."""
    out = [f"{name} (changed)" for name in after if name in before and before[name] != after[name]]
    out += [f"{name} (added)" for name in after if name not in before]
    out += [f"{name} (removed)" for name in before if name not in after]
    return out


def check_resumable(
    run: RunDir,
    previous: dict[str, Any],
    recipe_name: str,
    digests: dict[str, str],
    *,
    force: bool,
    lock: RunLock | None = None,
    explain: Any = None,
) -> None:
    """Refuse (RunError, exit 2) to resume a run whose instances this recipe no longer
    makes, or that may still be going; ``force`` overrides both.

    The caller holds the run's ``lock``: whoever wrote ``status = "running"`` on this
    host is gone (the kernel released its lock), whatever its pid has become since. A
    run made before runs were locked (no lock file) is judged by its pid, and a run
    marked running on another host cannot be judged from here: ``--force`` says so."""
    status = previous.get("status")
    host = previous.get("host")
    if status == "running" and not force:
        if host != socket.gethostname():
            raise RunError(
                f"run {run.run_id} is marked running on host {host!r}; if it is not running any more,"
                " pass --force to resume it here"
            )
        from toolkit.store.history import process_alive  # (a new run has no use for history)

        if (lock is None or not lock.existed) and process_alive(previous.get("pid")):
            raise RunError(
                f"run {run.run_id} may still be running (pid {previous.get('pid')} is alive); wait for it,"
                " or stop it; if that process is not the run, pass --force"
            )
    if force:
        return
    if previous.get("recipe") not in (None, recipe_name):
        raise RunError(f"run {run.run_id} is a run of recipe {previous.get('recipe')!r}, not {recipe_name!r}")
    before = previous.get("task_digests")
    if isinstance(before, dict):
        changed = changes(before, digests)
    else:  # a manifest without per-task digests: compare the whole
        changed = [] if previous.get("recipe_digest") == recipe_digest(digests) else ["the tasks"]
    if changed:
        what = ", ".join(changed)
        named = explain(changed) if explain is not None else []
        if named:
            what += "; " + "; ".join(named)
        raise RunError(
            f"cannot resume run {run.run_id}: the recipe's instances changed since it started"
            f" ({what}); start a new run, or pass --force to resume anyway"
            " (instances are matched by their content key: those that changed run again,"
            " and so does every instance downstream whose inputs changed)"
        )


#: changed instances an error names
NAMED_CHANGES = 5


def changed_instances(recipe: Any, runtimes: list[Any], run: RunDir, tasks: list[str]) -> list[str]:
    """Up to :data:`NAMED_CHANGES` instances of the changed ``tasks`` (as :func:`changes`
    names them) and what changed in each, against the run's records:
    ``estimate[seed=3]: params changed (samples)``, ``... and 12 more``."""
    names = {t.rpartition(" (")[0] for t in tasks if t.endswith("(changed)")}
    if not names:
        return []
    old: dict[str, dict[str, Any]] = {}
    for rec in run.records():
        if rec.get("task") in names and isinstance(rec.get("instance"), str):
            old[rec["instance"]] = rec
    out: list[str] = []
    extra = 0
    for rt in runtimes:
        spec = rt.spec
        if spec.name not in names:
            continue
        seen: set[str] = set()
        for _index, combo in spec.iter_combos():
            iid = spec.instance_id(combo)
            seen.add(iid)
            rec = old.get(iid)
            shown = spec.shown_params(spec.params_for(combo))
            params = json.loads(json.dumps(shown, default=str))
            if rec is None:
                what = "new (not in the run)"
            elif rec.get("params") != params:
                before = rec.get("params") or {}
                keys = sorted(k for k in set(before) | set(params) if before.get(k) != params.get(k))
                what = f"params changed ({', '.join(keys)})"
            elif rec.get("key") != instance_key(spec.name, spec.uses, rt.version, shown):
                what = "task version changed"
            else:
                continue
            if len(out) < NAMED_CHANGES:
                out.append(f"{iid}: {what}")
            else:
                extra += 1
        for iid, rec in old.items():
            if rec.get("task") == spec.name and iid not in seen:
                if len(out) < NAMED_CHANGES:
                    out.append(f"{iid}: removed")
                else:
                    extra += 1
    if extra:
        out.append(f"... and {extra} more")
    return out


class ResumePlan:
    """``todo``: per task, the instance indices to run; ``values``: per needed task,
    ``{index: {instance, params, value}}`` of the ok instances kept; ``kept``: counts
    by status of the instances left as they were, and ``not_run`` of those never run
    that stay so (``--retry-failed``); ``kept_ok``: per task that receives ``inputs``,
    the indices of its instances kept ok, which run again when the inputs it receives
    now differ from those of the run. A plain class: every run imports this module, and
    an attrs class costs ~2.7 M instructions to build."""

    __slots__ = ("kept", "kept_ok", "todo", "values")

    def __init__(
        self,
        todo: dict[str, list[int]],
        values: dict[str, dict[int, dict[str, Any]]],
        kept: dict[str, int],
        kept_ok: dict[str, list[int]] | None = None,
    ) -> None:
        self.todo = todo
        self.values = values
        self.kept = kept
        self.kept_ok = kept_ok if kept_ok is not None else {}


def plan_resume(recipe: Any, runtimes: list[Any], run: RunDir, *, retry_failed: bool) -> ResumePlan:
    """What a resume of ``run`` must run again (see the module's docstring)."""
    run.repair_tail()
    needed = {n for t in recipe.tasks for n in t.needs}
    # hold a status per key, and whole records only for the tasks others need
    status_of: dict[str, str] = {}
    kept_values: dict[str, dict[str, Any]] = {}
    for rec in run.records():
        key = rec.get("key")
        if not key:
            continue
        status_of[key] = rec.get("status", "")
        if rec.get("task") in needed:
            if rec.get("status") == "ok":
                kept_values[key] = {
                    "instance": rec["instance"],
                    "params": rec["params"],
                    "value": rec["value"],
                }
            else:
                kept_values.pop(key, None)
    todo: dict[str, list[int]] = {}
    kept_ok: dict[str, list[int]] = {}
    values: dict[str, dict[int, dict[str, Any]]] = {}
    kept = dict.fromkeys((*STATUSES, "not_run"), 0)
    again_by_status: dict[str, dict[str, int]] = {}  # per task: the statuses of what runs again
    left_out: set[str] = set()  # tasks with instances that stay not run
    for rt in runtimes:
        spec = rt.spec
        wanted = todo[spec.name] = []
        statuses = again_by_status[spec.name] = {}
        for index, combo in spec.iter_combos():
            key = instance_key(spec.name, spec.uses, rt.version, spec.shown_params(spec.params_for(combo)))
            status = status_of.get(key)
            again = (status in FAILED_STATUSES or status == "skipped") if retry_failed else status != "ok"
            if again:
                wanted.append(index)
                statuses[status] = statuses.get(status, 0) + 1
            elif status is None:
                kept["not_run"] += 1
                left_out.add(spec.name)
            else:
                kept[status] = kept.get(status, 0) + 1
                if status == "ok" and key in kept_values:
                    values.setdefault(spec.name, {})[index] = kept_values[key]
                if status == "ok" and spec.needs and rt.takes_inputs:
                    kept_ok.setdefault(spec.name, []).append(index)
    # --retry-failed leaves never-run instances alone: a task that needs one of them
    # would get partial inputs, so it stays as it was too (it runs on --resume)
    for name in _downstream(recipe, left_out):
        for status, n in again_by_status.get(name, {}).items():
            kept[status or "not_run"] += n
        todo[name] = []
    for name in list(kept_ok):
        if not todo.get(name) and name in _downstream(recipe, left_out):
            kept_ok.pop(name)
    return ResumePlan(todo=todo, values=values, kept=kept, kept_ok=kept_ok)


def _downstream(recipe: Any, roots: set[str]) -> set[str]:
    """The tasks that need one of ``roots``, directly or not."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for task in recipe.tasks:
            if task.name not in found and any(n in roots or n in found for n in task.needs):
                found.add(task.name)
                changed = True
    return found
