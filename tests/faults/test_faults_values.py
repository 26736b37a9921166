"""One bad instance fails one instance: values JSON cannot hold as they are (lone
surrogates, 100,000-deep nesting, objects), NaN and infinities (written as strings:
results.jsonl is strict JSON), text a task prints or raises that UTF-8 cannot encode.
Both local executors; the run goes on and ``--resume`` ends."""

from __future__ import annotations

import pytest
from faults_helpers import manifest, only_run, recipe_text, run_toolkit, strict_records

KINDS = [
    "surrogate",
    "deep",
    "nan",
    "infinities",
    "object",
    "raise_surrogate",
    "raise_unprintable",
    "unprintable",
    "print_surrogate",
    "print",
    "plain",
]
EXPECTED = {  # kind: (status, value or error type, words of the error message)
    "surrogate": ("failed", "UnserialisableResult", "not valid Unicode ('\\udcff'"),
    "deep": ("failed", "UnserialisableResult", "nested too deeply"),
    "nan": ("ok", "NaN", ""),
    "infinities": ("ok", {"up": "Infinity", "down": ["-Infinity", 1.5]}, ""),
    "object": ("failed", "UnserialisableResult", "object is not JSON-serialisable"),
    "raise_surrogate": ("failed", "ValueError", "bad byte \\udcff"),
    "raise_unprintable": ("failed", "Unprintable", "<exception str() failed>"),
    "unprintable": ("failed", "UnserialisableResult", "Unprintable is not JSON-serialisable"),
    "print_surrogate": ("ok", "printed", ""),
    "print": ("ok", 0, ""),
    "plain": ("ok", 0, ""),
}


def kinds_recipe(executor: str) -> str:
    kinds = ", ".join(f'"{k}"' for k in KINDS)
    task = f'[[task]]\nname = "v"\nuses = "faults.value_of"\nmatrix = {{ kind = [{kinds}] }}\n'
    return recipe_text("r", task, run=f'executor = "{executor}"\nkeep_going = true')


@pytest.mark.parametrize("executor", ["pool", "process"])
def test_bad_values_fail_their_instance_only(folder, executor):
    (folder / "r.toml").write_text(kinds_recipe(executor))
    res = run_toolkit(folder, "run", "r.toml", "-q")
    assert res.returncode == 1, res.stderr  # failed instances, not a broken run
    run = only_run(folder / "out", "r")
    records = {r["params"]["kind"]: r for r in strict_records(run / "results.jsonl")}
    assert set(records) == set(KINDS)
    for kind, (status, what, words) in EXPECTED.items():
        rec = records[kind]
        assert rec["status"] == status, (kind, rec)
        if status == "ok":
            assert rec["value"] == what, (kind, rec)
        else:
            assert rec["error"]["type"] == what, (kind, rec)
            assert words in rec["error"]["message"], (kind, rec)
    logs = {p.name: p.read_text() for p in (run / "logs").iterdir()}
    assert any("printed \\udcff" in text for text in logs.values())
    assert any("line of 0" in text for text in logs.values())
    # --resume runs the failed ones again, and ends
    res = run_toolkit(folder, "run", "r.toml", "--resume", "-q")
    assert res.returncode == 1, res.stderr
    meta = manifest(run)
    assert meta["status"] == "failed" and meta["counts"]["crashed"] == 0
    assert meta["counts"]["failed"] == 6 and meta["counts"]["ok"] == 5


def test_strict_json_fast_path_unchanged():
    """ints, strs and finite floats are written as before; non-finite floats as strings."""
    from toolkit.records import encode_record, make_record

    def line(value):
        return encode_record(
            make_record(task="t", instance="t", key="k", params={}, status="ok", value=value)
        )

    assert '"value": 3' in line(3)[0] and '"value": "x"' in line("x")[0] and '"value": 0.5' in line(0.5)[0]
    text, status = line([float("nan"), {"a": float("inf")}])
    assert status == "ok" and '"value": ["NaN", {"a": "Infinity"}]' in text
    text, status = line({float("-inf"): 1})
    assert status == "ok" and '"value": {"-Infinity": 1}' in text
