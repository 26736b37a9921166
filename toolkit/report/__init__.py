"""The run report: ``report.html``, written from a run directory alone.

:func:`write_report` (re)writes it; :func:`collect` gives its data; :func:`read_data`
reads the data back from a written report. They load when first used: a run that
leaves its report to a background process (``after_run``) imports none of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REPORT", "collect", "read_data", "render", "write_report"]


def __getattr__(name: str) -> Any:
    if name == "collect":
        from toolkit.report.data import collect

        return collect
    if name in ("REPORT", "read_data", "render", "write_report"):
        from toolkit.report import html

        return getattr(html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
