"""toolkit-dask: the ``dask`` executor, running recipes on Dask distributed.

A toolkit plugin (entry point ``toolkit.plugins: dask``). Importing it imports neither
Dask nor the executor: ``distributed`` is imported when a run starts the executor, so
``toolkit --help`` and recipes that use other executors stay fast.
"""

from __future__ import annotations

import toolkit

__version__ = "0.1.0"

__all__ = ["__version__", "check_options", "dask_executor"]


def dask_executor(context):
    """Run batches on a Dask cluster: [executor.dask] address, or a LocalCluster."""
    from toolkit_dask.executor import DaskExecutor

    return DaskExecutor(context)


def check_options(table):
    """The ``[executor.dask]`` table's problems (see :mod:`toolkit_dask.options`)."""
    from toolkit_dask.options import check_options

    return check_options(table)


@toolkit.hookimpl
def toolkit_register_executors(registry):
    registry.add("dask", dask_executor, check_options=check_options)
