"""``[notify]``: tell someone how a run ended: a webhook (POST of JSON) and/or a command.

A notification never changes how the run ended: what goes wrong (a server that is
down, hangs or answers 500, a command that fails or hangs) is written to the run's
``notify.log`` and as one warning line on stderr, and the run keeps its status and exit
code. Every wait is bounded: ``timeout`` per webhook attempt and for the command,
``retries`` more attempts after the first for the webhook (on a connection error, a
timeout, 429 or 5xx), with a short backoff between them.

The webhook URL often holds a credential (Slack, Teams, ntfy tokens), so it is never
printed or written: messages and logs show it as ``https://host/***``.

Payload (``schema = "toolkit.run/1"``; fields are only ever added)::

    {"schema": "toolkit.run/1", "text": "pi 20261125-203000-1a2b failed: 52 ok, 8 failed in 2.2s",
     "recipe": "pi", "run_id": "20261125-203000-1a2b", "status": "failed", "reason": "...",
     "counts": {"total": 61, "ok": 52, "failed": 8, "timeout": 0, "crashed": 0, "skipped": 1, "not_run": 0},
     "started": "2026-11-25T20:30:00.123456Z", "finished": "...", "duration_s": 2.2,
     "host": "build-1", "scheduled_for": null, "run_dir": "/abs/runs/pi/20261125-203000-1a2b",
     "report": "/abs/runs/pi/20261125-203000-1a2b/report.html",
     "failures": [{"instance": "work[n=3]", "task": "work", "status": "failed",
                   "error_type": "ValueError", "message": "bad input 3"}],
     "failures_total": 8}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from toolkit.records import FAILED_STATUSES, STATUSES

SCHEMA = "toolkit.run/1"
#: failures listed in the payload; ``failures_total`` has the count
FIRST_FAILURES = 5
LOG = "notify.log"
#: seconds to wait before the 2nd, 3rd... webhook attempt
BACKOFF = (1.0, 2.0, 4.0)

ON_CHOICES = ("failure", "success", "always")


def wanted(on: tuple[str, ...] | list[str], status: str) -> bool:
    """Whether a run that ended with ``status`` is notified: ``success`` is a
    ``succeeded`` run; ``failure`` is any other end (failed, incomplete, interrupted)."""
    if "always" in on:
        return True
    return ("success" if status == "succeeded" else "failure") in on


def mask_url(url: str) -> str:
    """``https://hooks.example.com/***``: where it goes, without what authorises it."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    return f"{parts.scheme}://{host}/***"


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL (and its path and query, which hold the credential) masked."""
    out = str(text)
    parts = urlsplit(str(url))
    for secret in (str(url), parts.path + ("?" + parts.query if parts.query else ""), parts.query):
        if secret and len(secret) > 1:
            out = out.replace(secret, "/***")
    if parts.password:
        out = out.replace(parts.password, "***")
    return out


def first_failures(run_dir: Path, limit: int = FIRST_FAILURES) -> list[dict[str, Any]]:
    """The first failed records of ``results.jsonl``; lines without an error are not
    even decoded (a 100,000-line file is scanned in milliseconds)."""
    out: list[dict[str, Any]] = []
    try:
        f = open(run_dir / "results.jsonl", "rb")  # noqa: SIM115
    except OSError:
        return out
    with f:
        for line in f:
            if b'"error": null' in line or b'"error":null' in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("status") not in FAILED_STATUSES:
                continue
            error = rec.get("error") if isinstance(rec.get("error"), dict) else {}
            out.append(
                {
                    "instance": rec.get("instance"),
                    "task": rec.get("task"),
                    "status": rec.get("status"),
                    "error_type": error.get("type"),
                    "message": str(error.get("message") or "")[:500],
                }
            )
            if len(out) >= limit:
                break
    return out


def payload(run_dir: Path, manifest: dict[str, Any], status: str, counts: dict[str, Any]) -> dict[str, Any]:
    """The JSON a webhook receives (see the module's docstring)."""
    run_dir = Path(run_dir).resolve()
    counts = {k: v for k, v in counts.items() if isinstance(v, int)}
    parts = [f"{counts[k]} {k}" for k in STATUSES if counts.get(k)]
    if counts.get("not_run"):
        parts.append(f"{counts['not_run']} not run")
    duration = manifest.get("duration_s")
    recipe = manifest.get("recipe") or run_dir.parent.name
    text = f"{recipe} {run_dir.name} {status}: {', '.join(parts) or 'nothing ran'}"
    if isinstance(duration, (int, float)):
        text += f" in {duration:.1f}s"
    failures = first_failures(run_dir) if status != "succeeded" else []
    report = run_dir / "report.html"
    return {
        "schema": SCHEMA,
        "text": text,
        "recipe": recipe,
        "run_id": manifest.get("run_id") or run_dir.name,
        "status": status,
        "reason": manifest.get("reason"),
        "counts": counts,
        "started": manifest.get("started"),
        "finished": manifest.get("finished"),
        "duration_s": duration,
        "host": manifest.get("host"),
        "scheduled_for": manifest.get("scheduled_for"),
        "run_dir": str(run_dir),
        "report": str(report) if report.exists() else None,
        "failures": failures,
        "failures_total": sum(counts.get(k, 0) for k in FAILED_STATUSES),
    }


class Log:
    """Lines to the run's ``notify.log`` and, for what went wrong, to stderr."""

    def __init__(self, run_dir: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = Path(run_dir) / LOG
        self.warn = warn

    def write(self, text: str, *, problem: bool = False) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{stamp} {text}\n")
        except OSError:
            pass
        if problem:
            message = f"notify: {text} (the run's status is unchanged; see {self.path})"
            if self.warn is not None:
                self.warn(message)
            else:
                try:
                    print(f"toolkit: warning: {message}", file=sys.stderr, flush=True)
                except (OSError, ValueError):
                    pass


def post(url: str, body: dict[str, Any], *, timeout: float, retries: int, log: Log) -> bool:
    """POST ``body`` as JSON; True when a 2xx answer came. Retries connection errors,
    timeouts, 429 and 5xx answers; never raises."""
    import urllib.error
    import urllib.request

    from toolkit import __version__

    shown = mask_url(url)
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    attempts = 1 + max(0, retries)
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"toolkit/{__version__}"},
        )
        again = True
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                log.write(f"webhook {shown}: {answer.status} (attempt {attempt} of {attempts})")
                return True
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
            again = exc.code == 429 or exc.code >= 500
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            why = "timed out" if isinstance(reason, TimeoutError) else f"{type(reason).__name__}: {reason}"
        why = _scrub(why, url)
        if not again or attempt == attempts:
            log.write(f"webhook {shown} failed: {why} (attempt {attempt} of {attempts})", problem=True)
            return False
        log.write(f"webhook {shown}: {why} (attempt {attempt} of {attempts}); trying again")
        time.sleep(BACKOFF[min(attempt - 1, len(BACKOFF) - 1)])
    return False


def run_command(
    command: str, run_dir: Path, status: str, *, cwd: Path | None, timeout: float, log: Log
) -> bool:
    """Run ``command`` with ``/bin/sh`` (``TOOLKIT_RUN_DIR``, ``TOOLKIT_RUN_STATUS`` and
    ``TOOLKIT_REPORT`` in its environment), its output appended to ``notify.log``.
    True when it exits 0; a command still going after ``timeout`` is killed."""
    import signal

    # not the run's own identity: a command that starts `toolkit run` starts a new run
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TOOLKIT_RUN_ID", "TOOLKIT_SCHEDULED_FOR", "TOOLKIT_RUN_TOKEN")
    }
    run_dir = Path(run_dir).resolve()
    env.update(
        TOOLKIT_RUN_DIR=str(run_dir),
        TOOLKIT_RUN_STATUS=status,
        TOOLKIT_REPORT=str(run_dir / "report.html"),
    )
    log.write(f"command: starting (timeout {timeout:g}s)")
    try:
        with open(log.path, "ab") as out:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=str(cwd) if cwd is not None and Path(cwd).is_dir() else None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a timeout kills what it started too
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
                log.write(f"command killed after {timeout:g}s", problem=True)
                return False
    except OSError as exc:
        log.write(f"command could not start: {exc.strerror or exc}", problem=True)
        return False
    if code != 0:
        log.write(f"command exited with {code}", problem=True)
        return False
    log.write("command: exit 0")
    return True


def notify(
    settings: Any,
    run_dir: str | os.PathLike[str],
    status: str,
    counts: dict[str, Any],
    *,
    cwd: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Send what ``settings`` (the recipe's ``[notify]``) asks for a run that ended with
    ``status``. Never raises for a notification that fails."""
    if settings is None or not (settings.webhook or settings.command) or not wanted(settings.on, status):
        return
    run_dir = Path(run_dir)
    log = Log(run_dir, warn)
    try:
        from toolkit.store.rundir import RunDir

        manifest = RunDir(run_dir).read_manifest()
    except Exception:  # a notification goes out even about a run whose manifest is damaged
        manifest = {}
    if settings.webhook:
        post(
            str(settings.webhook),
            payload(run_dir, manifest, status, counts),
            timeout=settings.timeout,
            retries=settings.retries,
            log=log,
        )
    if settings.command:
        run_command(settings.command, run_dir, status, cwd=cwd, timeout=settings.timeout, log=log)
