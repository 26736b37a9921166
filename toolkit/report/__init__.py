"""The run report: ``report.html``, written from a run directory alone.

:func:`write_report` (re)writes it; :func:`collect` gives its data; :func:`read_data`
reads the data back from a written report.
"""

from __future__ import annotations

from toolkit.report.data import collect
from toolkit.report.html import REPORT, read_data, render, write_report

__all__ = ["REPORT", "collect", "read_data", "render", "write_report"]
