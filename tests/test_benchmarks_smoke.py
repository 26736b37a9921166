"""The performance suite at tiny sizes, so that it cannot rot (benchmarks/README.md).

Runs ``benchmarks/run.py --quick --reps 1``: every case, the toolkit side always (through
``toolkit run`` in fresh processes), the baselines whose libraries or tools are here
(joblib, mpire and GNU parallel are skipped when missing). Judges no target: tiny sizes
say nothing about speed. A few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "benchmarks" / "run.py"


def test_every_benchmark_case_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--quick", "--reps", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        # unmeasured by the suite's coverage: its SIGTERM handler (sigterm = true) saves
        # data inside the handler, and a raw Pool's worker terminated by `with Pool()`
        # could deadlock there on a lock it held, the baseline waiting for it forever
        env={
            **os.environ,
            "TMPDIR": str(tmp_path),
            "COVERAGE_PROCESS_CONFIG": "",
            "COVERAGE_PROCESS_START": "",
        },
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    cases = {c["key"]: c for c in report["cases"]}
    assert sorted(cases, key=int) == [str(k) for k in range(1, 14)]
    for key, case in cases.items():
        if key == "8" and case["skipped"]:  # dask: only with plugins/toolkit-dask installed
            assert "not installed" in case["skipped"]
            continue
        assert not case["skipped"], f"case {key}: {case['skipped']}"
        assert case["rows"], f"case {key} printed no figures"
        assert case["targets"], f"case {key} has no targets"
        toolkit_rows = [
            r for r in case["rows"] if r[0].startswith(("toolkit", "fork", "spawn", "tiny", "CPU", "2", "20"))
        ]
        assert toolkit_rows, f"case {key}: no toolkit figure in {case['rows']}"
    # the toolkit's own figures are there whatever baselines are missing
    assert cases["1"]["data"]["figures"]["toolkit"]["rate_e2e"] > 0
    assert cases["4"]["data"]["toolkit"][0]["in_run_s"] > 0
    assert "toolkit --help" in [r[0] for r in cases["7"]["rows"]]
    assert "== summary" in proc.stdout
