"""Writing ``report.html`` when a run ends, without making the run slower.

Most runs get their report at once, before ``toolkit run`` returns. A report costs
about one second per 30 MB of ``results.jsonl`` (100,000 instances of a tiny task are
~30 MB), so for runs of very many very short instances, where that would add more than
a few percent to the run itself, a background process writes it instead; until it is
done, ``report.html`` is a small page that says so and reloads itself.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from toolkit.store.names import REPORT
from toolkit.store.rundir import RESULTS

#: results.jsonl bytes a report is written from per second (measured on a loaded 2-core
#: machine: 31 MB in 1.1 s; see benchmarks case 9)
BYTES_PER_SECOND = 30e6
#: a report expected to take less than this is always written before the run returns
ALWAYS_NOW_S = 0.25
#: otherwise, written at once only if it adds less than this share of the run's time
SHARE = 0.03

_PENDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<meta name="generator" content="toolkit report (pending)">
<title>{title}: report being written</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 24px">
<h1 style="font-size: 20px">{title}</h1>
<p>The report of this run ({size}) is being written by a background process,
started {when}. This page reloads itself until it is there.</p>
<p>If it stays like this, write it with <code>toolkit report {run_dir}</code>.</p>
</body></html>
"""


def _escape(text: str) -> str:
    """``html.escape``, without the ``html`` module (its import loads every HTML entity,
    which a run that leaves its report to the background never needs)."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        text = text.replace(char, entity)
    return text


def _write_now(run_dir: Path) -> None:
    from toolkit.report.html import write_report

    write_report(run_dir)


def expected_seconds(run_dir: Path) -> float:
    try:
        return (Path(run_dir) / RESULTS).stat().st_size / BYTES_PER_SECOND
    except OSError:
        return 0.0


def write_after_run(run_dir: str | os.PathLike[str], run_seconds: float) -> str:
    """Write the report of a run that just ended: ``"written"``, or ``"background"``
    when a background process was started to write it (see the module's docstring)."""
    run_dir = Path(run_dir)
    if expected_seconds(run_dir) <= max(ALWAYS_NOW_S, SHARE * max(run_seconds, 0.0)):
        _write_now(run_dir)
        return "written"
    size = (run_dir / RESULTS).stat().st_size
    page = _PENDING.format(
        title=_escape(f"{run_dir.parent.name} {run_dir.name}"),
        size=f"{size / 1e6:.0f} MB of results",
        when=time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        run_dir=_escape(str(run_dir)),
    )
    # first the placeholder, then the writer, which replaces it (atomically) when done;
    # no fsync for a page that lives a few seconds
    tmp = run_dir / f".{REPORT}.pending"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, run_dir / REPORT)
    import subprocess

    # through a shell that puts the writer in the background and exits at once: the
    # writer is nobody's child then (no zombie in a long-lived process, such as a
    # notebook that calls toolkit.run), and outside the run's session
    try:
        subprocess.run(
            [
                "/bin/sh",
                "-c",
                'exec "$0" -m toolkit.report "$1" </dev/null >/dev/null 2>&1 &',
                sys.executable,
                str(run_dir.resolve()),
            ],
            stdin=subprocess.DEVNULL,
            # not marked as a process of the run: nothing that cleans up after the run ends it
            env={k: v for k, v in os.environ.items() if k != "TOOLKIT_RUN_TOKEN"},
            start_new_session=True,
            close_fds=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        _write_now(run_dir)
        return "written"
    return "background"


def is_pending(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is the placeholder of a report still being written."""
    try:
        with open(path, "rb") as f:
            return b'content="toolkit report (pending)"' in f.read(400)
    except OSError:
        return False
