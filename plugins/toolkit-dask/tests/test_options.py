"""The [executor.dask] table, registration, and that loading the plugin imports no Dask."""

from __future__ import annotations

import subprocess
import sys

import pytest
from toolkit_dask import check_options
from toolkit_dask.options import DaskOptions


def test_a_good_table_has_no_problems():
    assert check_options({}) == []
    assert check_options({"address": "tcp://127.0.0.1:8786", "timeout": "20s"}) == []
    assert check_options({"scheduler_file": "/tmp/s.json"}) == []
    assert (
        check_options(
            {
                "threads_per_worker": 2,
                "memory_limit": "2GiB",
                "processes": False,
                "dashboard_address": False,
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"adress": "tcp://x:1"}, "unknown key 'adress' (did you mean 'address'?)"),
        ({"n_threads": 2}, "unknown key 'n_threads'"),
        ({"address": 8786}, "address: must be a non-empty string"),
        ({"timeout": "soon"}, "timeout: 'soon' is not a duration"),
        ({"timeout": 0}, "timeout: must be more than 0 seconds"),
        ({"threads_per_worker": 0}, "threads_per_worker: must be an integer >= 1"),
        ({"threads_per_worker": True}, "threads_per_worker: must be an integer >= 1"),
        ({"processes": "yes"}, "processes: must be true or false"),
        ({"dashboard_address": True}, "dashboard_address: must be an address"),
        ({"memory_limit": [1]}, "memory_limit: must be bytes"),
        ({"address": "tcp://a:1", "scheduler_file": "s.json"}, "give address or scheduler_file, not both"),
        ({"address": "tcp://a:0"}, "the port must be a number from 1 to 65535"),
        ({"address": "tcp://:8786"}, "names no host"),
        (
            {"address": "tcp://a:1", "threads_per_worker": 2},
            "threads_per_worker: only apply to the LocalCluster",
        ),
    ],
)
def test_bad_tables_are_refused_with_the_reason(table, expected):
    problems = check_options(table)
    assert any(expected in p for p in problems), problems


def test_local_cluster_defaults_bind_to_localhost():
    opts = DaskOptions.from_table({})
    assert not opts.external
    assert dict(opts.local) == {
        "threads_per_worker": 1,
        "processes": False,  # tasks run in runner processes either way
        "dashboard_address": "127.0.0.1:0",
    }
    assert dict(DaskOptions.from_table({"dashboard_address": False}).local)["dashboard_address"] is None
    assert DaskOptions.from_table({"address": "tcp://h:1", "timeout": "1m"}).timeout == 60.0


def test_validate_refuses_an_unknown_key(run_recipe):
    res = run_recipe(
        """
        [recipe]
        name = "v"
        plugins = ["toolkit.conformance"]
        [executor.dask]
        adress = "tcp://127.0.0.1:8786"
        [[task]]
        name = "sq"
        uses = "conformance.square"
        params = { x = 2 }
        """,
        command="validate",
        via="cli",
    )
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "executor.dask" in res.stderr and "did you mean 'address'" in res.stderr


def test_the_plugin_registers_the_executor():
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.split()[:1] in (["dask"], ["toolkit_dask"])]
    assert "register_executors" in line


def test_neither_the_plugin_nor_the_cli_imports_dask():
    code = (
        "import sys, contextlib, io\n"
        "import toolkit_dask\n"
        "from toolkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('dask', 'distributed', 'toolkit_dask.executor') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
