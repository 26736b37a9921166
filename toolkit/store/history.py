"""Reading runs back: the history of ``toolkit runs`` and one run for ``toolkit show``."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from toolkit.errors import RunError
from toolkit.records import FAILED_STATUSES, STATUSES
from toolkit.store.lock import is_locked
from toolkit.store.rundir import LATEST, MANIFEST, RunDir, find_run, runs_of


def process_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists (on this host). Not this process itself."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(manifest: dict[str, Any], run_dir: Path | None = None) -> str:
    """The manifest's status, except ``dead`` for a run still marked running that no
    process runs any more: it was killed before it could say how it ended. The run's
    lock says so (a pid may have been given to another process since); a run made
    before runs were locked, or read without its directory, is judged by its pid."""
    status = manifest.get("status", "unknown")
    if status != "running" or manifest.get("host") != socket.gethostname():
        return status
    locked = is_locked(run_dir) if run_dir is not None else None
    if locked is None:
        locked = process_alive(manifest.get("pid"))
    return status if locked else "dead"


def parse_time(text: Any) -> float | None:
    """A ``2026-11-25T20:30:00.123456Z`` string as a ``time.time()`` value."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def show_time(text: Any) -> str:
    """``2026-11-25 20:30:00Z``: to the second, still UTC."""
    t = parse_time(text)
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def show_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def count_records(run: RunDir) -> dict[str, int]:
    """Counts by status of the last record of every instance."""
    counts = dict.fromkeys(STATUSES, 0)
    for rec in run.latest_records().values():
        status = rec.get("status")
        if isinstance(status, str) and status in counts:
            counts[status] += 1
    return counts


#: the manifest fields the history reads, and what each must be
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "reason": str,
    "recipe": str,
    "recipe_path": str,
    "started": str,
    "finished": str,
    "duration_s": (int, float),
    "counts": dict,
    "resumed": list,
    "scheduled_for": str,
    "overrides": list,
    "pid": int,
    "host": str,
    "executor": str,
    "executor_reason": str,
    "workers": int,
    "start_method": str,
    "toolkit": str,
    "python": str,
    "plugins": dict,
}
#: status of a run whose manifest cannot be read, or holds fields of the wrong type
DAMAGED = "damaged"


def check_manifest(manifest: Any) -> tuple[dict[str, Any], list[str]]:
    """``(the fields that are as they should be, what is wrong with the others)``: a
    manifest edited by hand or cut short must not take ``runs`` or ``show`` down."""
    if not isinstance(manifest, dict):
        return {}, ["not a table"]
    good: dict[str, Any] = {}
    problems = []
    for key, value in manifest.items():
        kind = _FIELDS.get(key)
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            problems.append(f"{key} is {_kind(value)}")
            continue
        if key == "counts":
            value = {k: v for k, v in value.items() if _count(v)}
            if len(value) < len(manifest[key]):
                problems.append("counts holds values that are not counts")
        elif key in ("resumed", "overrides") and not all(isinstance(v, str) for v in value):
            problems.append(f"{key} holds values that are not strings")
            value = [v for v in value if isinstance(v, str)]
        elif key == "plugins":
            value = {str(k): str(v) for k, v in value.items()}
        good[key] = value
    if "status" not in manifest:
        problems.append("it has no status")
    return good, problems


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array"}
    return names.get(type(value), "a table" if isinstance(value, dict) else f"a {type(value).__name__}")


def read_checked(run: RunDir) -> tuple[dict[str, Any], str]:
    """``(the manifest's fields that are as they should be, what is wrong)``, the second
    ``""`` for a sound manifest. ``RunError`` only when there is no manifest at all."""
    if not run.manifest_path.is_file():
        run.read_manifest()  # raises the RunError that says so
    try:
        manifest, problems = check_manifest(run.read_manifest())
    except RunError as exc:
        manifest, problems = {}, [_reason(exc, run)]
    except UnicodeDecodeError:
        manifest, problems = {}, [f"{MANIFEST} is not UTF-8 text"]
    except OSError as exc:
        manifest, problems = {}, [f"{MANIFEST} cannot be read: {exc.strerror or exc}"]
    problem = "; ".join(problems)
    if problem and not problem.startswith(MANIFEST):
        problem = f"{MANIFEST}: {problem}"
    return manifest, problem


@attrs.define
class RunEntry:
    """One run as the history shows it. A run whose manifest is damaged has the status
    ``damaged`` and says why in ``problem``; what could be read of it is still shown."""

    run: RunDir
    manifest: dict[str, Any]
    status: str
    counts: dict[str, int]
    problem: str = ""

    @classmethod
    def read(cls, run: RunDir) -> RunEntry:
        """The run's entry; ``RunError`` only when ``run`` is no run directory at all."""
        manifest, problem = read_checked(run)
        status = DAMAGED if problem else effective_status(manifest, run.path)
        counts = dict(manifest.get("counts") or {})
        if not any(counts.get(s) for s in STATUSES):  # not finished: count what is on disk
            counts.update(count_records(run))
            if isinstance(counts.get("total"), int):
                counts["not_run"] = max(0, counts["total"] - sum(counts.get(s, 0) for s in STATUSES))
        return cls(run=run, manifest=manifest, status=status, counts=counts, problem=problem)

    @property
    def recipe(self) -> str:
        return str(self.manifest.get("recipe") or self.run.recipe_name)

    @property
    def damaged(self) -> bool:
        return self.status == DAMAGED

    @property
    def started(self) -> float:
        return parse_time(self.manifest.get("started")) or 0.0

    @property
    def duration(self) -> float | None:
        if self.status == "running":
            return time.time() - self.started if self.started else None
        return self.manifest.get("duration_s")

    def failed(self) -> int:
        return sum(self.counts.get(s, 0) for s in FAILED_STATUSES)

    def note(self) -> str:
        notes = [self.problem] if self.problem else []
        if self.manifest.get("scheduled_for"):
            notes.append(f"scheduled for {show_time(self.manifest['scheduled_for'])}")
        resumed = self.manifest.get("resumed") or []
        if resumed:
            notes.append(f"resumed {len(resumed)}x")
        return ", ".join(notes)


def _reason(exc: RunError, run: RunDir) -> str:
    """Why a manifest could not be read, in a line (TOML's message names the line)."""
    text = str(exc)
    if "is damaged: " in text:
        return f"{MANIFEST} is not valid TOML: {text.split('is damaged: ', 1)[1]}"
    return text.replace(str(run.path) + "/", "")


def recipe_dirs(output: Path) -> list[Path]:
    try:
        if not output.is_dir():
            return []
        return sorted(p for p in output.iterdir() if _is_dir(p) and not p.name.startswith("."))
    except OSError:  # not ours to read: nothing listed
        return []


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def iter_runs(output: Path, recipe: str | None = None) -> Iterator[RunEntry]:
    """Every run under ``output`` (or of one recipe), in no particular order; a run whose
    manifest is damaged is one too, with the status ``damaged``."""
    bases = [output / recipe] if recipe else recipe_dirs(output)
    for base in bases:
        for path in runs_of(base):
            yield RunEntry.read(RunDir(path))


def list_runs(output: Path, recipe: str | None = None) -> list[RunEntry]:
    """The runs under ``output``, newest first."""
    return sorted(iter_runs(Path(output), recipe), key=lambda e: (e.started, e.run.run_id), reverse=True)


def resolve_run(spec: str, output: Path) -> RunDir:
    """A run named the way ``toolkit show`` accepts: a path to a run directory,
    ``RECIPE/RUN-ID``, ``RECIPE/latest`` (or just ``RECIPE``), ``latest`` (the newest
    run of any recipe), or a run id or a unique start of one, searched under ``output``."""
    output = Path(output)
    path = Path(spec)
    if (path / MANIFEST).is_file():
        return RunDir(path)
    if "/" in spec.strip("/"):
        recipe, _, rid = spec.strip("/").rpartition("/")
        if (output / recipe).is_dir():
            return find_run(output, recipe, None if rid == LATEST else rid)
    if (output / spec).is_dir() and not (output / spec / MANIFEST).exists():
        return find_run(output, spec)  # a recipe's name: its latest run
    if spec == LATEST:
        runs = list_runs(output)
        if not runs:
            raise RunError(f"no runs in {output}")
        return runs[0].run
    exact, prefix = [], []
    for base in recipe_dirs(output):
        for run in runs_of(base):
            if run.name == spec:
                exact.append(run)
            elif run.name.startswith(spec):
                prefix.append(run)
    found = exact or prefix
    if len(found) == 1:
        return RunDir(found[0])
    if not found:
        raise RunError(
            f"no run {spec!r} in {output} (`toolkit runs` lists them; --output DIR looks elsewhere)"
        )
    names = ", ".join(f"{p.parent.name}/{p.name}" for p in found[:5])
    raise RunError(f"{spec!r} names several runs ({names}); name one as RECIPE/RUN-ID")


def failures(run: RunDir) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The instances whose last record failed (failed, timeout, crashed), and those
    skipped, in order of arrival."""
    bad, skipped = [], []
    for rec in run.latest_records().values():
        status = rec.get("status")
        if not isinstance(status, str):
            continue
        if status in FAILED_STATUSES:
            bad.append(rec)
        elif status == "skipped":
            skipped.append(rec)
    return bad, skipped


def error_head(error: Any, lines: int = 3) -> list[str]:
    """The first lines of a record's error: ``Type: message``, cut to ``lines``."""
    if not isinstance(error, dict):
        return []
    message = str(error.get("message") or "")
    text = f"{error.get('type') or 'Error'}: {message}" if message else str(error.get("type") or "")
    out = [line for line in text.splitlines() if line.strip()]
    if len(out) > lines:
        out = [*out[:lines], f"... ({len(out) - lines} more lines)"]
    return out
