"""``manifest.toml``: what a run is, how it was run, and how it ended.

Written when the run starts (``status = "running"``, with ``pid`` and ``host`` so that a
later command can tell a live run from a killed one) and replaced, atomically, when it
ends (succeeded, failed or interrupted). A resumed run keeps ``started``, adds the
time of each resume to ``resumed`` and adds its own time to ``duration_s`` (the time
spent running, over all sessions). Fields, scalars first::

    format = 1
    run_id, recipe, recipe_path, status, started, finished, duration_s,
    scheduled_for (set by the scheduler daemon), resumed = [...],
    host, pid (while running), toolkit, python, platform,
    executor, executor_reason, workers, start_method, recipe_digest,
    overrides = ["--set values", ...],
    [counts]        total, ok, failed, timeout, crashed, skipped, not_run
    [plugins]       name = version, for every plugin that is not built in
    [task_digests]  name = digest of what decides the task's instances
    [inputs]        name = digest of the upstream values the task received (its ``inputs``)
    [cache]         hits, files_read: with the cache on, what this session took from it
    [sources]       "task.axis" = the matrix file source as written (when there are any)
    [resolved]      the recipe, validated and resolved, as TOML
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

from toolkit.records import STATUSES, utc_iso
from toolkit.store.runid import scheduled_for_from_environment

FORMAT = 1


def _toolkit_version() -> str:
    from toolkit import __version__

    return __version__


def platform_name() -> str:
    """``platform.platform(terse=True)`` as it reads on Linux, where it is
    ``system-release-machine-with-libc``: ``Linux-6.1.0-13-amd64-x86_64-with-glibc2.36``.
    Without asking for the processor, which the standard library learns by running
    ``uname -p`` (a process per run, ~5 ms) and then drops ("unknown", or the machine
    again) on the usual systems."""
    if not sys.platform.startswith("linux"):
        return platform.platform(terse=True)
    u = os.uname()
    libc, version = platform.libc_ver()
    name = "-".join(x.strip() for x in (u.sysname, u.release, u.machine, "with", libc + version) if x)
    for char in ' /\\:;"()':
        name = name.replace(char, "_" if char == " " else "-")
    name = name.replace("unknown", "")
    while "--" in name:
        name = name.replace("--", "-")
    return name.rstrip("-")


def _start_method(recipe: Any) -> str:
    if getattr(recipe.run, "start_method", None):
        return recipe.run.start_method
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=False)


def start_manifest(
    *,
    run_id: str,
    recipe: Any,
    plan: Any,
    plugin_versions: dict[str, str],
    digests: dict[str, str],
    recipe_digest: str,
    started: float,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a run that starts now (``previous``: the manifest of the run
    this session resumes)."""
    previous = previous or {}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "run_id": run_id,
        "recipe": recipe.name,
        "recipe_path": str(recipe.path) if getattr(recipe, "path", None) else None,
        "status": "running",
        "started": previous.get("started") or utc_iso(started),
        "finished": None,
        "duration_s": None,
        "scheduled_for": scheduled_for_from_environment() or previous.get("scheduled_for"),
        "resumed": [*previous.get("resumed", []), utc_iso(started)] if previous else None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "toolkit": _toolkit_version(),
        "python": platform.python_version(),
        "platform": platform_name(),
        "executor": plan.executor,
        "executor_reason": plan.reason,
        "workers": recipe.run.workers,
        "start_method": _start_method(recipe),
        "recipe_digest": recipe_digest,
        # the --set overrides, which --resume applies again
        "overrides": list(getattr(recipe, "overrides", ())),
        "counts": {"total": plan.total},
        "plugins": dict(plugin_versions),
        "task_digests": dict(digests),
        "resolved": recipe.to_table(),
    }
    # matrix file sources as written ({"TASK.AXIS": {"glob": ...}}): a resume takes their
    # values from [resolved] while they are unchanged (toolkit.recipe.sources.pin_sources)
    sources = {f"{t.name}.{k}": dict(v) for t in recipe.tasks for k, v in getattr(t, "sources", ())}
    if sources:
        manifest["sources"] = sources
    manifest["_previous_duration"] = previous.get("duration_s") or 0.0
    return manifest


def finish_manifest(
    manifest: dict[str, Any],
    *,
    status: str,
    counts: dict[str, int],
    not_run: int,
    total: int,
    started: float,
    finished: float,
    reason: str | None = None,
) -> dict[str, Any]:
    """The manifest of the run that ``manifest`` started, now ended (``reason``: why it
    did not succeed, when it did not)."""
    out = dict(manifest)
    previous = out.pop("_previous_duration", 0.0)
    out.update(
        status=status,
        finished=utc_iso(finished),
        duration_s=round(previous + (finished - started), 3),
        counts={"total": total, **{k: counts.get(k, 0) for k in STATUSES}, "not_run": not_run},
    )
    out.pop("pid", None)
    return with_status(out, status, reason)


def with_status(manifest: dict[str, Any], status: str, reason: str | None = None) -> dict[str, Any]:
    """``manifest`` with this ``status`` and ``reason`` (right after the status; none
    left from an earlier session)."""
    out: dict[str, Any] = {}
    for key, value in manifest.items():
        if key == "reason":
            continue
        out[key] = status if key == "status" else value
        if key == "status" and reason:
            out["reason"] = reason
    return out


def to_write(manifest: dict[str, Any]) -> dict[str, Any]:
    """What goes to disk: no private keys; scalars first, then tables (TOML needs no
    order, but people read it)."""
    shown = {k: v for k, v in manifest.items() if not k.startswith("_")}
    head = {k: v for k, v in shown.items() if not isinstance(v, dict)}
    tail = {k: v for k, v in shown.items() if isinstance(v, dict) and k != "resolved"}
    if "resolved" in shown:
        tail["resolved"] = shown["resolved"]
    return {**head, **tail}
