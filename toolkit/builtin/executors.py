"""Built-in executors: ``process`` (one process per instance) and ``pool``."""

from __future__ import annotations

from toolkit.hookspecs import hookimpl


def _no_options(table) -> list[str]:
    return [f"unknown key {key!r}: this executor takes no options" for key in table]


def process_executor(context):
    """One process per instance, at most `workers` at once; a timeout kills it."""
    from toolkit.execution.local import LocalExecutor

    return LocalExecutor(context, mode="process")


def pool_executor(context):
    """A supervised pool of `workers` long-lived processes with batched dispatch."""
    from toolkit.execution.local import LocalExecutor

    return LocalExecutor(context, mode="pool")


@hookimpl
def toolkit_register_executors(registry):
    registry.add("process", process_executor, check_options=_no_options)
    registry.add("pool", pool_executor, check_options=_no_options)


@hookimpl(trylast=True)
def toolkit_choose_executor(recipe, plan):
    from toolkit.execution.plan import auto_choice

    return auto_choice(recipe, plan)[0]
