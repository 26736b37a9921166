"""An address that is no Dask scheduler ends the run with one line and exit 2, at once.

Each case runs ``toolkit run`` as a user would, against real servers on 127.0.0.1 that
are not Dask schedulers: an HTTP server (Dask's client would wait forever for its
handshake), a server that greets with a banner like SSH does (Dask's client read it as
a frame length: ``MemoryError``), a closed port (Dask's client, half-made, then printed
"Exception ignored ... TimeoutError" for seconds after the message), ``tls://`` without
certificates (``TypeError``), an unknown scheme, and a scheduler file that never comes.
The cases run at once: each spends most of its time importing Dask.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time

RECIPE = """
[recipe]
name = "nowhere"
plugins = ["toolkit.conformance"]
[run]
executor = "dask"
[executor.dask]
{where}
timeout = "1s"
[[task]]
name = "sq"
uses = "conformance.square"
params = {{ x = 3 }}
"""

#: generous: the machine is shared; a hang is what this guards against
HANG_GUARD = 90


@contextlib.contextmanager
def _serving(handle):
    """A TCP server on 127.0.0.1 that calls ``handle(conn)`` for each connection."""
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conns.append(conn)
                handle(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in conns:
            conn.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # not into the test's output
        pass


@contextlib.contextmanager
def _http_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_addresses_that_are_not_a_scheduler_end_in_one_line(tmp_path):
    refused = _closed_port()
    with (
        _http_server() as http_port,
        _serving(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")) as banner_port,
    ):
        cases = {
            # it waits for a request line, or answers 400 to the first line it sees in
            # Dask's handshake: either way, not a scheduler
            "http": (
                f'address = "tcp://127.0.0.1:{http_port}"',
                "sent no Dask handshake|does not speak Dask",
            ),
            "banner": (
                f'address = "tcp://127.0.0.1:{banner_port}"',
                r"does not speak Dask's protocol \(MemoryError\)",
            ),
            # "(Connection refused)" follows unless Dask's last attempt was cut by the timeout
            "refused": (f'address = "tcp://127.0.0.1:{refused}"', "nothing answered"),
            "tls": (f'address = "tls://127.0.0.1:{refused}"', "tls:// needs certificates: set distributed"),
            "scheme": ('address = "nope://127.0.0.1:1"', r"unknown address scheme 'nope' \(known schemes"),
            "file": (
                f'scheduler_file = "{tmp_path / "none.json"}"',
                re.escape(f"the Dask scheduler file {tmp_path / 'none.json'} does not exist (waited 1s)"),
            ),
        }
        procs = {}
        for name, (where, _) in cases.items():
            recipe = tmp_path / f"{name}.toml"
            recipe.write_text(RECIPE.format(where=where))
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "toolkit", "run", str(recipe), "--output", str(tmp_path / "runs")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={k: v for k, v in os.environ.items() if k != "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD"},
            )
        deadline = time.monotonic() + HANG_GUARD
        errors, hung = {}, []
        for name, proc in procs.items():  # every process is waited for before judging any
            try:
                errors[name] = proc.communicate(timeout=max(1, deadline - time.monotonic()))[1]
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                hung.append(name)
    assert not hung, f"toolkit run still running after {HANG_GUARD}s: {hung}"
    for name, err in errors.items():
        lines = err.splitlines()
        assert procs[name].returncode == 2, (name, err)
        assert len(lines) == 1, (name, err)  # no traceback, nothing printed after it
        prefix = (
            "toolkit: error: "
            if name == "file"
            else "toolkit: error: cannot connect to the Dask scheduler at "
        )
        assert lines[0].startswith(prefix), (name, err)
        assert re.search(cases[name][1], lines[0]), (name, err)


def test_an_impossible_address_is_refused_at_validation(run_recipe):
    res = run_recipe(RECIPE.format(where='address = "tcp://127.0.0.1:99999"'), command="validate", via="cli")
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "address: 'tcp://127.0.0.1:99999': the port must be a number from 1 to 65535" in res.stderr
    assert "Traceback" not in res.stderr
