"""``toolkit ui``: a small read-only web app on the standard library's ``http.server``.

Why no framework: the app serves a handful of pages and JSON answers to one person's
browser on this machine; ``ThreadingHTTPServer`` does that with nothing to install, and
it starts in milliseconds. Every request must carry the token printed at start (``?token=``
once; a cookie for the rest of the session): without it, 403. Only GET and HEAD exist.
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from toolkit.ui.data import Reader, ReportCache, instance_log, schedules

ASSETS = Path(__file__).parent / "assets"
_TEXT_FILES = {
    "manifest.toml": "text/plain; charset=utf-8",
    "results.jsonl": "text/plain; charset=utf-8",
    "results.csv": "text/plain; charset=utf-8",
    "notify.log": "text/plain; charset=utf-8",
    "attempts.jsonl": "text/plain; charset=utf-8",
}


class App:
    """What the handler needs: the readers, the token, the page template."""

    def __init__(self, output: str, state: str | None, token: str | None = None) -> None:
        self.reader = Reader(output)
        self.reports = ReportCache()
        self.state = state
        self.token = token or secrets.token_urlsafe(18)
        self.cookie = "toolkit_ui"
        self._template = (ASSETS / "ui.html").read_text(encoding="utf-8")
        self._style = (ASSETS / "ui.css").read_text(encoding="utf-8")
        self._script = (ASSETS / "ui.js").read_text(encoding="utf-8")

    def page(self, kind: str, title: str, **params: Any) -> bytes:
        config = json.dumps({"page": kind, **params}).replace("<", "\\u003c")
        parts = {
            "{{title}}": html.escape(title),
            "{{style}}": self._style,
            "{{script}}": self._script,
            "{{config}}": config,
        }
        import re

        pieces = re.split(r"(\{\{[a-z]+\}\})", self._template)
        return "".join(parts.get(p, p) for p in pieces).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    server: UIServer
    server_version = "toolkit-ui"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: it is one person's browser
        pass

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token must not leak in a Referer
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any) -> None:
        self._send(200, json.dumps(data, default=str).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, text: str) -> None:
        body = f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{html.escape(text)}</p>"
        self._send(status, body.encode(), "text/html; charset=utf-8")

    def _authorised(self, query: dict[str, list[str]]) -> tuple[bool, dict[str, str]]:
        app = self.server.app
        given = (query.get("token") or [""])[0]
        if given and hmac.compare_digest(given.encode(), app.token.encode()):
            cookie = f"{app.cookie}_{self.server.server_port}={app.token}; Path=/; HttpOnly; SameSite=Strict"
            return True, {"Set-Cookie": cookie}
        name = f"{app.cookie}_{self.server.server_port}="
        for part in (self.headers.get("Cookie") or "").split(";"):
            part = part.strip()
            if part.startswith(name) and hmac.compare_digest(part[len(name) :].encode(), app.token.encode()):
                return True, {}
        return False, {}

    # -- methods -------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        ok, headers = self._authorised(query)
        if not ok:
            self._error(
                HTTPStatus.FORBIDDEN,
                "403 Forbidden: this toolkit ui needs its token. Open the URL that `toolkit ui` printed.",
            )
            return
        try:
            self.route([unquote(p) for p in url.path.split("/") if p], query, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # one bad page must not stop the app
            self._error(500, f"{type(exc).__name__}: {exc}")

    def _refuse(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "toolkit ui only reads: GET and HEAD.")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    # -- routes --------------------------------------------------------------------------
    def route(self, parts: list[str], query: dict[str, list[str]], headers: dict[str, str]) -> None:
        app = self.server.app
        reader = app.reader
        q = {k: v[0] for k, v in query.items() if k != "token"}
        html_type = "text/html; charset=utf-8"
        if not parts:
            self._send(200, app.page("runs", "toolkit runs", filters=q), html_type, headers)
        elif parts == ["schedules"]:
            self._send(200, app.page("schedules", "toolkit schedules", state=app.state), html_type, headers)
        elif parts == ["api", "runs"]:
            self._json(reader.runs(q.get("recipe") or None, q.get("status") or None))
        elif parts == ["api", "schedules"]:
            self._json(schedules(app.state, reader))
        elif len(parts) == 4 and parts[:2] == ["api", "runs"]:
            run_dir = reader.run_dir(parts[2], parts[3])
            if run_dir is None:
                self._error(404, "no such run")
            else:
                self._json(reader.progress(run_dir))
        elif len(parts) >= 3 and parts[0] == "runs":
            run_dir = reader.run_dir(parts[1], parts[2])
            if run_dir is None:
                self._error(404, f"no run {'/'.join(parts[1:3])} in {reader.output}")
                return
            self.run_route(run_dir, parts[3:], q, headers)
        else:
            self._error(404, "no such page")

    def run_route(self, run_dir: Path, rest: list[str], q: dict[str, str], headers: dict[str, str]) -> None:
        app = self.server.app
        recipe, run_id = run_dir.parent.name, run_dir.name
        html_type = "text/html; charset=utf-8"
        if not rest:
            if not self.path.split("?")[0].endswith("/"):  # relative links need the slash
                query = urlsplit(self.path).query
                where = f"/runs/{quote(recipe)}/{quote(run_id)}/" + (f"?{query}" if query else "")
                self._send(301, b"", html_type, {**headers, "Location": where})
                return
            page = app.page("run", f"{recipe} {run_id}", recipe=recipe, run_id=run_id)
            self._send(200, page, html_type, headers)
        elif rest == ["report.html"]:
            self._send(200, app.reports.page(run_dir, app.reader.status(run_dir)), html_type, headers)
        elif rest == ["log"]:
            instance = q.get("instance", "")
            page = app.page(
                "log", f"{instance}: log", recipe=recipe, run_id=run_id, **instance_log(run_dir, instance)
            )
            self._send(200, page, html_type, headers)
        elif len(rest) == 1 and rest[0] in _TEXT_FILES:
            self._file(run_dir, run_dir / rest[0], _TEXT_FILES[rest[0]])
        elif len(rest) == 2 and rest[0] == "logs" and "/" not in rest[1] and not rest[1].startswith("."):
            self._file(run_dir, run_dir / "logs" / rest[1], "text/plain; charset=utf-8")
        else:
            self._error(404, "no such page")

    def _file(self, run_dir: Path, path: Path, ctype: str) -> None:
        try:
            # a link in the run directory (a task can make one) must not serve what it points to
            if not path.resolve().is_relative_to(run_dir.resolve()):
                raise FileNotFoundError(path)
            body = path.read_bytes()
        except (OSError, ValueError):  # ValueError: a NUL in the name
            self._error(404, f"no {path.name}")
            return
        self._send(200, body, ctype)


class UIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, Handler)


def make_server(
    output: str, state: str | None, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> UIServer:
    """The server, bound but not serving yet (``serve_forever`` serves)."""
    return UIServer((host, port), App(output, state, token))


def url_of(server: UIServer) -> str:
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/?token={server.app.token}"


def serve_in_thread(server: UIServer) -> threading.Thread:
    """Serve from a background thread (tests, benchmarks)."""
    thread = threading.Thread(target=server.serve_forever, name="toolkit-ui", daemon=True)
    thread.start()
    return thread


def main(output: str, state: str | None, host: str, port: int) -> int:
    """``toolkit ui``: bind, print the URL, serve until Ctrl-C."""
    from toolkit.errors import UsageError

    try:
        server = make_server(output, state, host, port)
    except OSError as exc:
        if port:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (--port 0 picks a free port)"
            ) from None
        raise UsageError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    with server:
        print(
            f"toolkit ui: runs in {Path(output).resolve()}"
            + (f", schedules in {Path(state).resolve()}" if state else ""),
            flush=True,
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"toolkit ui: listening on {host}: whoever can reach it and has the URL can read your runs",
                file=sys.stderr,
                flush=True,
            )
        print(url_of(server), flush=True)
        # Ctrl-C and SIGTERM (systemd, a container, `kill`) stop it cleanly, also when it
        # was started where SIGINT is ignored (a background job of a script)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
