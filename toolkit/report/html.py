"""``report.html``: one self-contained file, the report's data embedded in it.

The page is a template with its style and script inlined (``assets/``: no library, no
font, no network fetch of any kind). The data of :func:`toolkit.report.data.collect`
travels as zlib-compressed JSON in base64, which the page inflates with the browser's
own ``DecompressionStream``: 100,000 instances are ~1-2 MB instead of 10-20 MB of JSON.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import zlib
from pathlib import Path
from typing import Any

from toolkit.report.data import collect
from toolkit.store.names import REPORT
from toolkit.store.rundir import atomic_write

ASSETS = Path(__file__).parent / "assets"
__all__ = ["REPORT", "read_data", "render", "write_report"]
#: the element that holds the data; :func:`read_data` finds it again
_DATA_OPEN = '<script type="application/octet-stream" id="report-data" data-encoding="zlib+base64">'
_DATA_CLOSE = "</script>"


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def encode_data(data: dict[str, Any]) -> str:
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return base64.b64encode(zlib.compress(raw.encode("utf-8"), 6)).decode("ascii")


def render(data: dict[str, Any], *, run_link: str = "", ui: bool = False) -> str:
    """The page for ``data``. ``run_link``: the run directory relative to where the page
    is written ('' when it is written inside the run directory), for the links to logs
    and result files. ``ui``: the page is served by ``toolkit ui``."""
    summary = data.get("summary", {})
    title = f"{summary.get('recipe', 'run')} {summary.get('run_id', '')}: {summary.get('status', '')}"
    page = _asset("report.html")
    parts = {
        "{{title}}": html.escape(title),
        "{{style}}": _asset("report.css"),
        "{{script}}": _asset("report.js"),
        # inside <script> entities are not decoded: escape "<" the JSON way instead
        "{{base}}": json.dumps({"run": run_link, "ui": ui}).replace("<", "\\u003c"),
        "{{data}}": f"{_DATA_OPEN}{encode_data(data)}{_DATA_CLOSE}",
    }
    # one pass over the template: the inserted texts are never searched for marks
    pieces = re.split(r"(\{\{[a-z]+\}\})", page)
    return "".join(parts.get(p, p) for p in pieces)


def read_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data embedded in a report file (for tests and tools)."""
    text = Path(path).read_text(encoding="utf-8")
    start = text.index(_DATA_OPEN) + len(_DATA_OPEN)
    end = text.index(_DATA_CLOSE, start)
    return json.loads(zlib.decompress(base64.b64decode(text[start:end])))


def write_report(
    run_dir: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    status: str | None = None,
) -> Path:
    """(Re)write the report of ``run_dir`` to ``output`` (default: its ``report.html``),
    atomically: a reader sees the old page or the new one."""
    run_dir = Path(run_dir)
    out = Path(output) if output is not None else run_dir / REPORT
    data = collect(run_dir, status=status)
    link = os.path.relpath(run_dir.resolve(), out.resolve().parent)
    link = "" if link == "." else link.replace(os.sep, "/") + "/"
    atomic_write(out, render(data, run_link=link).encode("utf-8"))
    return out
