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
import socket
import subprocess
import sys
import threading
import time

import pytest

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


@contextlib.contextmanager
def _http_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
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
            "http": (f'address = "tcp://127.0.0.1:{http_port}"', "sent no Dask handshake"),
            "banner": (f'address = "tcp://127.0.0.1:{banner_port}"', "does not speak Dask's protocol"),
            "refused": (f'address = "tcp://127.0.0.1:{refused}"', "nothing answered (Connection refused)"),
            "tls": (f'address = "tls://127.0.0.1:{refused}"', "tls:// needs certificates"),
            "scheme": ('address = "nope://127.0.0.1:1"', "unknown address scheme 'nope'"),
            "file": (
                f'scheduler_file = "{tmp_path / "none.json"}"',
                f"the Dask scheduler file {tmp_path / 'none.json'} does not exist (waited 1s)",
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
        for name, proc in procs.items():
            try:
                _out, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for p in procs.values():
                    p.kill()
                pytest.fail(f"{name}: toolkit run still running after {HANG_GUARD}s")
            lines = err.splitlines()
            assert proc.returncode == 2, (name, err)
            assert len(lines) == 1, (name, err)  # no traceback, nothing printed after it
            prefix = (
                "toolkit: error: "
                if name == "file"
                else "toolkit: error: cannot connect to the Dask scheduler at "
            )
            assert lines[0].startswith(prefix), (name, err)
            assert cases[name][1] in lines[0], (name, err)


def test_an_impossible_address_is_refused_at_validation(run_recipe):
    res = run_recipe(RECIPE.format(where='address = "tcp://127.0.0.1:99999"'), command="validate", via="cli")
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "address: 'tcp://127.0.0.1:99999': the port must be a number from 1 to 65535" in res.stderr
    assert "Traceback" not in res.stderr
