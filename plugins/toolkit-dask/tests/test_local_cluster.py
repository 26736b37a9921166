"""The LocalCluster that ``toolkit run --executor dask`` starts without an address:
every socket it listens on is on 127.0.0.1, in every mode, and its dashboard's address
is printed.

The run is a real ``toolkit run`` process; its task holds the run until the test has
read the listening sockets of the whole process tree (the toolkit process, and in
``processes = true`` the worker processes and their runners).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import psutil  # a dependency of distributed
import pytest

HOLD = '''
import time
from pathlib import Path

import toolkit


def hold(x: int, folder: str) -> int:
    """Say it started, then wait for the test to let it finish."""
    Path(folder, f"started-{x}").touch()
    deadline = time.monotonic() + 120  # the test went away: do not hang the run
    while not Path(folder, "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(hold, name="hold.hold")
'''

RECIPE = """
[recipe]
name = "sockets"
plugins = ["hold_tasks.py"]
[run]
executor = "dask"
workers = 2
[executor.dask]
{options}
[[task]]
name = "hold"
uses = "hold.hold"
params = {{ folder = "{folder}" }}
matrix = {{ x = [1, 2] }}
"""


def _listening(root: psutil.Process) -> set[tuple[str, int]]:
    found = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            found.update(
                (c.laddr.ip, c.laddr.port) for c in proc.net_connections("inet") if c.status == "LISTEN"
            )
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.parametrize(
    "options",
    ["processes = false", "processes = true\ndashboard_address = false"],
    ids=["threads", "processes-no-dashboard"],
)
def test_every_socket_of_a_local_cluster_is_on_localhost(tmp_path, options):
    (tmp_path / "hold_tasks.py").write_text(HOLD)
    recipe = tmp_path / "sockets.toml"
    recipe.write_text(RECIPE.format(options=options, folder=tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", str(recipe), "--progress", "off"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD"},
    )
    try:
        deadline = time.monotonic() + 90
        while not all((tmp_path / f"started-{x}").exists() for x in (1, 2)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the tasks did not start"
            time.sleep(0.05)
        listening = _listening(psutil.Process(proc.pid))
    finally:
        (tmp_path / "release").touch()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + err
    assert listening, "a LocalCluster listens somewhere (its scheduler's HTTP server at least)"
    assert {ip for ip, _port in listening} == {"127.0.0.1"}, listening
    dashboard = re.search(r"Dask dashboard: http://127\.0\.0\.1:(\d+)/status", out)
    if "dashboard_address = false" in options:
        assert dashboard is None, out
    else:
        assert dashboard is not None, out
        assert ("127.0.0.1", int(dashboard.group(1))) in listening
