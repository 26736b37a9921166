"""What workers receive (named tuples of their own module) and the task table they
unpickle (a view of each task spec, no attrs class)."""

from __future__ import annotations

import pickle

from toolkit.execution.api import Batch, TaskRuntime, WorkerSetup
from toolkit.recipe import read_recipe
from toolkit.recipe.instances import TaskView
from toolkit.recipe.model import TaskSpec
from toolkit.records import Instance


def noop(i: int = 0) -> None:
    return None


def test_payload_classes_pickle_compare_and_replace():
    batch = Batch(id=4, task=0, indices=range(10), attempt=2, inputs=[{"a": 1}], isolate=True)
    setup = WorkerSetup(files=("tasks.py",), tasks_blob=b"x", run_dir="/tmp/r")
    runtime = TaskRuntime(spec="spec", func=noop, version="2", takes_ctx=True)
    for obj in (batch, setup, runtime):
        assert pickle.loads(pickle.dumps(obj)) == obj
    part = batch._replace(indices=batch.indices[3:], isolate=False)
    assert part == Batch(id=4, task=0, indices=range(3, 10), attempt=2, inputs=[{"a": 1}])
    assert batch.indices == range(10)
    assert setup._replace(files=()) == WorkerSetup(tasks_blob=b"x", run_dir="/tmp/r")


def test_instances_compare_without_their_params():
    one = Instance(task="t", index=0, id="t", key="k", params={"a": 1})
    other = Instance(task="t", index=0, id="t", key="k", params={"a": 2})
    assert one == other and hash(one) == hash(other)
    assert one != Instance(task="t", index=1, id="t", key="k", params={"a": 1})
    assert repr(one) == "Instance(task='t', index=0, id='t', key='k')"


def test_the_task_table_holds_views_of_the_specs(tmp_path):
    (tmp_path / "r.toml").write_text(
        '[recipe]\nname = "v"\n[[task]]\nname = "t"\nuses = "x.y"\nretries = 2\ntimeout = "3s"\n'
        'params = { a = 1, s = "${matrix.i}-x" }\nmatrix = { i = [1, 2, 3], j = ["p", "q"], '
        'exclude = [{ i = 2, j = "q" }] }\n'
    )
    spec = read_recipe(tmp_path / "r.toml").tasks[0]
    runtime = TaskRuntime(spec=spec, func=noop, version="1")
    setup = WorkerSetup.build([], [runtime], tmp_path)
    (loaded,) = pickle.loads(setup.tasks_blob)
    view = loaded.spec
    assert type(view) is TaskView
    assert (loaded.func, loaded.version) == (noop, "1")
    for name in ("name", "uses", "params", "matrix", "needs", "retries", "timeout", "isolate", "templates"):
        assert getattr(view, name) == getattr(spec, name)
    assert TaskSpec.from_view(view) == spec and view.to_table() == spec.to_table()
    indices = range(spec.space())
    assert list(view.instances(indices)) == list(spec.instances(indices))
    assert [view.combo(i) for i in indices] == [spec.combo(i) for i in indices]
    assert (view.count(), view.space(), view.params_layout()) == (
        spec.count(),
        spec.space(),
        spec.params_layout(),
    )
    assert repr(view) == "TaskView(name='t', uses='x.y')"
    # a spec of another kind (no for_worker) goes as it is
    other = TaskRuntime(spec="anything", func=noop)
    assert pickle.loads(WorkerSetup.build([], [other], "").tasks_blob) == (other,)
