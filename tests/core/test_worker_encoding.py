"""The worker's fast record lines are byte for byte what make_record + encode_record make."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.execution.api import Batch, TaskRuntime, WorkerSetup
from toolkit.execution.worker import BatchRunner, _encode, encode_record, make_record
from toolkit.recipe.model import TaskSpec
from toolkit.records import ParamsText, instance_key, key_maker

VALUES = [
    0,
    -7,
    10**30,
    1.5,
    1e-7,
    -0.0,
    math.inf,
    math.nan,
    True,
    None,
    "plain",
    'quote " backslash \\ newline \n tab \t nul \x00 é ☃ \U0001f600',
    [1, "two", [3.0, None]],
    (1, 2),
    {"b": 1, "a": {"nested": [1, {"x": "y"}]}},
    {1: "int key"},
    {3, 1, 2},
    datetime.date(2026, 11, 25),
    datetime.datetime(2026, 11, 25, 20, 30, 0, 123456),
]


def produce(which: int, tag: str = "", **_: object) -> object:
    return VALUES[which]


def unserialisable(which: int, tag: str = "") -> object:
    return object()


def circular(which: int, tag: str = "") -> object:
    loop: list = []
    loop.append(loop)
    return loop


def lines_of(func, matrix, params=None):
    spec = TaskSpec(name="t", uses="enc.t", params=params or {}, matrix=matrix)
    runtime = TaskRuntime(spec=spec, func=func, version="1.0")
    runner = BatchRunner(WorkerSetup(run_dir=""), (runtime,))
    out: list[tuple] = []
    runner.run(Batch(id=0, task=0, indices=range(spec.space())), out.append)
    lines = b"".join(msg[4] for msg in out).decode().splitlines()
    bad = [b for msg in out for b in msg[5]]
    return spec, runtime, lines, bad


def expected(spec, runtime, index, func, line, started, finished):
    combo = spec.combo(index)
    params = spec.params_for(combo)
    rec = json.loads(line)
    record = make_record(
        task=spec.name,
        instance=spec.instance_id(combo),
        key=instance_key(spec.name, spec.uses, runtime.version, params),
        params=params,
        status="ok",
        value=func(**params),
        attempts=1,
        started=started,
        finished=finished,
        worker=rec["worker"],
        peak_rss=rec["peak_rss_mib"],
    )
    return encode_record(record)


AWKWARD = 'brace {0} }{ quote " backslash \\ nul \x00 é ☃ \U0001f600 \\u0000toolkit-params-0\\u0000'


@pytest.mark.parametrize(
    ("matrix", "params"),
    [
        # params that are not plain scalars: every line's params and key encoded whole
        (
            {"which": {"range": [0, len(VALUES)]}, "tag": ["a", 'é"x']},
            {"when": datetime.date(2026, 1, 2), "deep": {"k": [1, 2]}},
        ),
        # plain params: filled in from the task's texts (ParamsText)
        ({"which": {"range": [0, len(VALUES)]}}, {}),
        ({"which": {"range": [0, len(VALUES)]}}, {"z": AWKWARD, "which": 0, "a": 1.5, "n": None, "b": True}),
        ({"which": {"range": [0, len(VALUES)]}, "tag": ["a", AWKWARD, 'x"']}, {"tag": "", "q": -1}),
        # values that are neither int nor str (the general way, record by record)
        ({"which": [0, 1, 2], "tag": ["a", 1.5, True, None, [1, "b"], {"k": "v"}]}, {"p": "{}"}),
        ({"which": [3, 4], "tag": [False, 2.0, [2], 10**30]}, {}),
    ],
)
def test_ok_lines_match_the_general_encoder(monkeypatch, matrix, params):
    # a fake clock: the worker reads it once before the batch, then at the start and at
    # the end of every instance; its steps cross whole seconds
    clock = [1_764_102_599.99 + k * 0.001234 for k in range(400)]
    calls = iter(clock)
    monkeypatch.setattr(time, "time", lambda: next(calls))
    spec, runtime, lines, bad = lines_of(produce, matrix, params)
    assert bad == []
    assert len(lines) == spec.count()
    for index, line in enumerate(lines):
        want, status = expected(
            spec, runtime, index, produce, line, clock[1 + 2 * index], clock[2 + 2 * index]
        )
        assert status == "ok"
        assert line == want


@pytest.mark.parametrize("func", [unserialisable, circular])
def test_a_value_that_cannot_be_written_makes_a_failed_record(func):
    _spec, _runtime, lines, bad = lines_of(func, {"which": [0, 1]})
    assert [b[1] for b in bad] == ["failed", "failed"]
    for line in lines:
        rec = json.loads(line)
        assert rec["status"] == "failed"
        assert rec["value"] is None
        assert rec["error"]["type"] == "UnserialisableResult"


def test_key_maker_matches_instance_key():
    make = key_maker("t", "enc.t", None)
    for params in [{}, {"x": 1}, {"b": [1, {"z": 0, "a": 1}], "a": "é"}, {"d": datetime.date(2026, 1, 1)}]:
        assert make(params) == instance_key("t", "enc.t", None, params)


flat = st.one_of(
    st.integers(-(10**20), 10**20),
    st.text(max_size=6),
    st.sampled_from(["{", "}", "{0}", "{}", '"', "\\", "\x00toolkit-params-0\x00", "é"]),
    st.booleans(),
    st.none(),
    st.floats(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "x", "y", "zz", "{k}", 'q"']), flat, max_size=4),
    st.lists(st.sampled_from(["x", "y", "b", "m_2"]), min_size=1, max_size=3, unique=True),
    st.data(),
)
def test_params_text_is_what_the_encoders_make(base, names, data):
    text = ParamsText.make("t", "enc.t", "1.0", base, tuple(names), _encode)
    if text is None:  # marks in the base already, or NaN and infinities: the general way
        assert any(
            "toolkit-params" in str(v) or (isinstance(v, float) and not math.isfinite(v))
            for v in base.values()
        )
        return
    vals = [
        data.draw(st.one_of(st.integers(), st.text(max_size=4), st.sampled_from(["{1}", '"']))) for _ in names
    ]
    params = dict(base)
    params.update(zip(names, vals, strict=True))
    js = [repr(v) if type(v) is int else json.encoder.encode_basestring(v) for v in vals]
    assert text.params.format(*js) == _encode(params)
    blob = text.key.format(*js)
    assert hashlib.blake2b(blob.encode(), digest_size=10).hexdigest() == key_maker("t", "enc.t", "1.0")(
        params
    )
    if len(names) == 1:
        p0, p1, k0, k1 = text.pieces
        assert p0 + js[0] + p1 == _encode(params) and k0 + js[0] + k1 == blob


@pytest.mark.parametrize("base", [{"l": [1]}, {"d": {}}, {"when": datetime.date(2026, 1, 1)}])
def test_params_text_only_for_plain_scalars(base):
    assert ParamsText.make("t", "enc.t", None, base, ("x",), _encode) is None
