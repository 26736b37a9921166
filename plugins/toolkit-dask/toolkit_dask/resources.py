"""A task's ``cpus`` and ``memory`` as Dask worker resources, where the cluster has them.

Workers that are started with ``dask worker --resources "CPU=8,MEMORY=32e9"`` declare
what they have; a Dask task that asks for ``resources={"CPU": 2}`` runs only on a worker
with 2 CPU free, and the worker runs no more at once than its CPU allow. Each batch of
a task asks for the task's ``cpus`` as ``CPU`` and its ``memory`` (bytes) as ``MEMORY``
(a batch's instances run one after the other), for the names the cluster declares:
a cluster that declares neither runs batches as Dask places them, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolkit.errors import RunError

CPU = "CPU"
MEMORY = "MEMORY"


def declared(client: Any) -> dict[str, float]:
    """The most of each resource that one worker of the cluster declares."""
    most: dict[str, float] = {}
    for info in client.scheduler_info().get("workers", {}).values():
        for name, amount in (info.get("resources") or {}).items():
            most[name] = max(most.get(name, 0.0), float(amount))
    return most


def _asks(spec: Any) -> dict[str, float]:
    asks = {CPU: float(getattr(spec, "cpus", 1) or 1)}
    if getattr(spec, "memory", None):
        asks[MEMORY] = float(spec.memory)
    return asks


def per_task(specs: Sequence[Any], most: dict[str, float], where: str) -> list[dict[str, float] | None]:
    """For each task, the resources its batches ask for (None: no restriction); a
    :class:`RunError` for a task that no worker of the cluster could ever run."""
    if not (CPU in most or MEMORY in most):
        return [None] * len(specs)
    out: list[dict[str, float] | None] = []
    for spec in specs:
        asks = {name: amount for name, amount in _asks(spec).items() if name in most}
        for name, amount in asks.items():
            if amount > most[name]:
                key, shown = ("cpus", f"{amount:g}") if name == CPU else ("memory", f"{amount:.0f} bytes")
                raise RunError(
                    f"task {spec.name!r} asks for {key} = {shown}, but no worker of the Dask cluster"
                    f" at {where} declares more than {name}={most[name]:g}"
                )
        out.append(asks or None)
    return out
