"""Each lifecycle and registration hook, called as documented."""

from __future__ import annotations

import attrs

import toolkit
from toolkit.api import execute, prepare
from toolkit.execution.plan import make_plan


def recipe_dict(**run):
    return {
        "recipe": {"name": "hooks", "plugins": ["toolkit.conformance"]},
        "run": {"workers": 2, **run},
        "task": [
            {"name": "sq", "uses": "conformance.square", "matrix": {"x": [1, 2, 3]}},
            {"name": "total", "uses": "conformance.add_inputs", "needs": ["sq"]},
        ],
    }


def test_hook_toolkit_task_start_and_finish(toolkit_pm, register_plugin, tmp_path):
    seen = []

    class Watcher:
        @toolkit.hookimpl
        def toolkit_task_start(self, instance):
            seen.append(("start", instance.id, instance.params))

        @toolkit.hookimpl
        def toolkit_task_finish(self, instance, record):
            seen.append(("finish", instance.id, record["status"]))

    register_plugin(Watcher(), "watcher")
    recipe, plugins = prepare(recipe_dict(), plugins=toolkit_pm)
    result = execute(recipe, plugins, output=tmp_path)
    assert result.status == "succeeded"
    starts = sorted(s[1] for s in seen if s[0] == "start")
    finishes = sorted((s[1], s[2]) for s in seen if s[0] == "finish")
    assert starts == ["sq[x=1]", "sq[x=2]", "sq[x=3]", "total"]
    assert finishes == [("sq[x=1]", "ok"), ("sq[x=2]", "ok"), ("sq[x=3]", "ok"), ("total", "ok")]
    assert ("start", "sq[x=2]", {"x": 2}) in seen


def test_hook_toolkit_task_finish_sees_failures(toolkit_pm, register_plugin, tmp_path):
    statuses = {}

    class Watcher:
        @toolkit.hookimpl
        def toolkit_task_finish(self, instance, record):
            statuses[instance.id] = record["status"]

    register_plugin(Watcher(), "watcher")
    recipe, plugins = prepare(
        {
            "recipe": {"name": "hooks", "plugins": ["toolkit.conformance"]},
            "run": {"keep_going": True},
            "task": [
                {"name": "f", "uses": "conformance.fail_on", "params": {"bad": 2}, "matrix": {"x": [1, 2]}}
            ],
        },
        plugins=toolkit_pm,
    )
    assert execute(recipe, plugins, output=tmp_path).status == "failed"
    assert statuses == {"f[x=1]": "ok", "f[x=2]": "failed"}


def test_hook_toolkit_configure_can_change_the_recipe(toolkit_pm, register_plugin, tmp_path):
    class OneWorker:
        @toolkit.hookimpl
        def toolkit_configure(self, recipe):
            return attrs.evolve(recipe, run=attrs.evolve(recipe.run, workers=1))

    register_plugin(OneWorker(), "one-worker")
    recipe, plugins = prepare(recipe_dict(workers=2), plugins=toolkit_pm)
    assert recipe.run.workers == 1
    result = execute(recipe, plugins, output=tmp_path)
    assert result.status == "succeeded"
    assert "workers = 1" in (result.run_dir / "manifest.toml").read_text()


def test_hook_toolkit_choose_executor_overrides_auto(toolkit_pm, register_plugin, tmp_path):
    class AlwaysProcess:
        @toolkit.hookimpl
        def toolkit_choose_executor(self, recipe, plan):
            assert plan.total == 4
            return "process"

    recipe, plugins = prepare(recipe_dict(), plugins=toolkit_pm)
    assert make_plan(recipe, plugins).executor == "process"  # few instances: the built-in choice
    big = {
        **recipe_dict(),
        "task": [{"name": "sq", "uses": "conformance.square", "matrix": {"x": {"range": [0, 50]}}}],
    }
    recipe, plugins = prepare(big, plugins=toolkit_pm)
    assert make_plan(recipe, plugins).executor == "pool"
    register_plugin(AlwaysProcess(), "always-process")
    recipe, plugins = prepare(recipe_dict(), plugins=toolkit_pm)
    plan = make_plan(recipe, plugins)
    assert plan.executor == "process"
    assert "always-process" in plan.reason


def test_hook_toolkit_register_executors(toolkit_pm, register_plugin, tmp_path):
    made = []

    def serial_factory(context):
        """Runs batches in the main process, one after the other (a toy)."""
        from toolkit.execution.api import Records
        from toolkit.execution.worker import BatchRunner, load_setup

        class Serial:
            def __init__(self):
                self.events = []
                self.runner = None

            def start(self):
                self.runner = BatchRunner(context.setup, load_setup(context.setup))

            def capacity(self):
                return 1

            def submit(self, batch):
                self.runner.run(batch, lambda msg: self.events.append(Records(*msg[1:])))

            def poll(self, timeout):
                events, self.events = self.events, []
                return events

            def shutdown(self, kill=False):
                made.append("shutdown")

        made.append(context.options)
        return Serial()

    class SerialPlugin:
        @toolkit.hookimpl
        def toolkit_register_executors(self, registry):
            registry.add(
                "serial",
                serial_factory,
                check_options=lambda t: [f"unknown key {k!r}" for k in t if k != "label"],
            )

    register_plugin(SerialPlugin(), "serial")
    data = recipe_dict(executor="serial")
    data["executor"] = {"serial": {"label": "x"}}
    recipe, plugins = prepare(data, plugins=toolkit_pm)
    result = execute(recipe, plugins, output=tmp_path)
    assert result.status == "succeeded"
    assert made == [{"label": "x"}, "shutdown"]
    total = next(r for r in result.records() if r["task"] == "total")
    assert total["value"]["total"] == 1 + 4 + 9


def test_an_executor_that_says_how_many_workers_it_has_gets_batches_for_them(
    toolkit_pm, register_plugin, tmp_path
):
    """A cluster knows its size only once connected; the scheduler spreads the work over
    the executor's ``workers``, not over ``run.workers``."""
    sizes = []

    def factory(context):
        from toolkit.execution.api import Records
        from toolkit.execution.worker import BatchRunner, load_setup

        class Wide:
            workers = 0  # not known before start

            def __init__(self):
                self.events = []

            def start(self):
                self.runner = BatchRunner(context.setup, load_setup(context.setup))
                self.workers = 3

            def capacity(self):
                return 1

            def submit(self, batch):
                sizes.append(len(batch.indices))
                self.runner.run(batch, lambda msg: self.events.append(Records(*msg[1:])))

            def poll(self, timeout):
                events, self.events = self.events, []
                return events

            def shutdown(self, kill=False):
                pass

        return Wide()

    class WidePlugin:
        @toolkit.hookimpl
        def toolkit_register_executors(self, registry):
            registry.add("wide", factory)

    register_plugin(WidePlugin(), "wide")
    data = {
        "recipe": {"name": "wide", "plugins": ["toolkit.conformance"]},
        "run": {"workers": 1, "executor": "wide"},
        "task": [{"name": "sq", "uses": "conformance.square", "matrix": {"x": list(range(48))}}],
    }
    recipe, plugins = prepare(data, plugins=toolkit_pm)
    result = execute(recipe, plugins, output=tmp_path)
    assert result.status == "succeeded"
    assert sum(sizes) == 48
    assert sizes[:3] == [1, 1, 1]  # one single-instance probe per worker
    assert max(sizes) <= 48 // (3 * 4)  # about four batches per worker, not per run.workers
