"""[notify]: a real HTTP server on 127.0.0.1 receives the webhook; a server that fails or
hangs, and a command that fails, never change how the run ended."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from report_helpers import MIXED, OK, cli, project, run_dirs

SECRET_PATH = "/hook/T0KEN-s3cr3t"


class Hook:
    """A webhook receiver: records every POST; answers 200, 500, or hangs."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.mode = "ok"
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.paths.append(self.path)
                hook.bodies.append(json.loads(body))
                if hook.mode == "hang":
                    hook.release.wait(30)
                    return
                code = 200 if hook.mode == "ok" else 500
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}?key=abc123"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def notify_table(**keys) -> str:
    return "[notify]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


def assert_url_hidden(run, proc, url):
    everything = proc.stdout + proc.stderr
    for path in run.rglob("*"):
        if path.is_file():
            everything += path.read_text(errors="replace")
    for secret in (url, SECRET_PATH, "T0KEN-s3cr3t", "abc123"):
        assert secret not in everything


def test_a_failed_run_posts_its_summary(tmp_path, hook):
    recipe = project(tmp_path, "mixed", MIXED.format(n=8) + notify_table(webhook="${secret.HOOK_URL}"))
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path, env={"HOOK_URL": hook.url})
    assert proc.returncode == 1, proc.stderr
    (run,) = run_dirs(tmp_path / "runs", "mixed")
    (body,) = hook.bodies
    assert hook.paths == [f"{SECRET_PATH}?key=abc123"]
    assert body["schema"] == "toolkit.run/1"
    assert (body["recipe"], body["run_id"], body["status"]) == ("mixed", run.name, "failed")
    assert body["counts"]["ok"] == 12 and body["counts"]["failed"] == 4 and body["failures_total"] == 4
    assert body["failures"][0]["error_type"] == "ValueError" and "bad input" in body["failures"][0]["message"]
    assert body["report"] == str((run / "report.html").resolve()) and (run / "report.html").is_file()
    assert body["run_dir"] == str(run.resolve()) and body["duration_s"] > 0
    assert "failed" in body["text"] and "12 ok" in body["text"]
    assert_url_hidden(run, proc, hook.url)
    assert "webhook http://127.0.0.1" in (run / "notify.log").read_text()


def test_on_success_skips_a_failed_run_and_always_sends(tmp_path, hook):
    recipe = project(tmp_path, "fine", OK.format(extra=notify_table(on=["success"], webhook=hook.url)))
    assert cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path).returncode == 0
    assert [b["status"] for b in hook.bodies] == ["succeeded"]
    recipe = project(tmp_path, "mixed", MIXED.format(n=4) + notify_table(on=["success"], webhook=hook.url))
    assert cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path).returncode == 1
    assert len(hook.bodies) == 1
    recipe = project(tmp_path, "mixed", MIXED.format(n=4) + notify_table(on=["always"], webhook=hook.url))
    assert cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path).returncode == 1
    assert [b["status"] for b in hook.bodies] == ["succeeded", "failed"]


def test_a_server_that_answers_500_is_retried_then_logged(tmp_path, hook):
    hook.mode = "500"
    recipe = project(
        tmp_path, "fine", OK.format(extra=notify_table(on=["always"], webhook=hook.url, retries=1))
    )
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    assert proc.returncode == 0  # the run succeeded; its notification did not
    assert len(hook.bodies) == 2
    (run,) = run_dirs(tmp_path / "runs", "fine")
    assert "notify: webhook http://127.0.0.1" in proc.stderr and "HTTP 500" in proc.stderr
    assert "succeeded" in (run / "manifest.toml").read_text()
    assert_url_hidden(run, proc, hook.url)


def test_a_server_that_hangs_does_not_hang_the_run(tmp_path, hook):
    hook.mode = "hang"
    recipe = project(
        tmp_path, "mixed", MIXED.format(n=4) + notify_table(webhook=hook.url, timeout="0.5s", retries=1)
    )
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert len(hook.bodies) == 2
    assert "timed out" in proc.stderr


def test_a_server_that_is_not_there(tmp_path):
    recipe = project(
        tmp_path,
        "fine",
        OK.format(extra=notify_table(on=["always"], webhook="http://127.0.0.1:9/x", retries=0)),
    )
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    assert proc.returncode == 0
    assert "notify: webhook http://127.0.0.1:9/*** failed" in proc.stderr


def test_a_command_gets_the_run_in_its_environment(tmp_path):
    out = tmp_path / "notified.txt"
    command = f'echo "$TOOLKIT_RUN_STATUS $TOOLKIT_RUN_DIR $TOOLKIT_REPORT" > {out}; echo said it'
    recipe = project(tmp_path, "mixed", MIXED.format(n=4) + notify_table(command=command))
    assert cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path).returncode == 1
    (run,) = run_dirs(tmp_path / "runs", "mixed")
    status, run_dir, report = out.read_text().split()
    assert (status, run_dir, report) == ("failed", str(run.resolve()), str(run.resolve() / "report.html"))
    assert "said it" in (run / "notify.log").read_text()


def test_a_failing_or_hanging_command_changes_nothing(tmp_path):
    recipe = project(tmp_path, "fine", OK.format(extra=notify_table(on=["always"], command="exit 3")))
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    assert proc.returncode == 0 and "command exited with 3" in proc.stderr
    recipe = project(
        tmp_path, "fine", OK.format(extra=notify_table(on=["always"], command="sleep 30", timeout="0.3s"))
    )
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path, timeout=20)
    assert proc.returncode == 0 and "command killed after 0.3s" in proc.stderr


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('on = ["sometimes"]', ":12: notify.on[0]: must be one of failure | success | always"),
        ('webhook = "ftp://x/secret-part"', ":12: notify.webhook: must be an http:// or https:// URL"),
        ("retries = -1", ":12: notify.retries: must be >= 0"),
        ('hook = "x"', ":12: notify.hook: unknown key (did you mean 'webhook'?)"),
    ],
)
def test_a_bad_notify_table_is_one_clear_error(tmp_path, table, message):
    recipe = project(tmp_path, "fine", OK.format(extra=f"[notify]\n{table}\n"))
    proc = cli("validate", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert "secret-part" not in proc.stderr


def test_the_manifest_never_holds_the_webhook(tmp_path, hook):
    recipe = project(tmp_path, "fine", OK.format(extra=notify_table(on=["always"], webhook=hook.url)))
    proc = cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    (run,) = run_dirs(tmp_path / "runs", "fine")
    manifest = (run / "manifest.toml").read_text()
    assert f'webhook = "http://127.0.0.1:{hook.server.server_port}/***"' in manifest
    assert_url_hidden(run, proc, hook.url)
