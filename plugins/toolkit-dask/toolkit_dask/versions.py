"""At connect: refuse a cluster whose scheduler or workers lack what the tasks need.

Dask's own ``Client.get_versions(packages=...)`` reports the installed version of any
distribution on the client, the scheduler and every worker. The executor asks it for
``toolkit``, ``toolkit-dask`` and the distributions that the recipe's task modules come
from (installed plugins), and compares. The scheduler needs ``toolkit`` and
``toolkit-dask`` too: it unpickles every task it is sent. A task module that belongs to
no distribution but has a ``__version__`` is compared by importing it on the workers.
Recipe-relative plugin files are not checked: their source travels with the run.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from collections.abc import Iterable
from typing import Any

from toolkit.errors import RunError

#: distributions the scheduler must have (the tasks' own need only be on workers)
SCHEDULER_NEEDS = ("toolkit", "toolkit-dask")


@functools.cache
def _by_top_level() -> dict[str, list[str]]:
    try:
        return importlib.metadata.packages_distributions()
    except Exception:  # a broken distribution elsewhere in the environment
        return {}


def distribution_of(module: str, table: dict[str, list[str]] | None = None) -> str | None:
    """The distribution that installs ``module``'s top-level package, if any.

    The name itself first (``toolkit``, ``toolkit_dask``: one file to read), then the
    table of every distribution's top-level names (a scan of them all, ~50-100 ms)."""
    top = module.partition(".")[0]
    try:
        return importlib.metadata.distribution(top).metadata["Name"]
    except importlib.metadata.PackageNotFoundError:
        pass
    dists = (table if table is not None else _by_top_level()).get(top)
    return dists[0] if dists else None


def needed(task_modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(distributions, bare modules with a __version__)`` the workers must match."""
    dists = list(SCHEDULER_NEEDS)
    bare = []
    for module in sorted(set(task_modules)):
        dist = distribution_of(module)
        if dist is not None:
            if dist not in dists:
                dists.append(dist)
        elif getattr(sys.modules.get(module), "__version__", None) is not None:
            bare.append(module)
    return dists, bare


def _packages(info: Any) -> dict[str, Any]:
    return info.get("packages", {}) if isinstance(info, dict) else {}


def mismatches(versions: dict[str, Any], dists: list[str]) -> list[str]:
    """Lines naming every place whose versions differ from the client's."""
    ours = _packages(versions.get("client"))
    problems = []
    places = [("scheduler", versions.get("scheduler"))]
    places += sorted((f"worker {addr}", info) for addr, info in versions.get("workers", {}).items())
    for where, info in places:
        theirs = _packages(info)
        for dist in dists:
            if where == "scheduler" and dist not in SCHEDULER_NEEDS:
                continue
            want, have = ours.get(dist), theirs.get(dist)
            if want != have:
                problems.append(
                    f"{where}: {dist} {have if have else 'is not installed'} (here: {want or 'not installed'})"
                )
    return problems


def check_cluster(client: Any, task_modules: Iterable[str], where: str) -> None:
    """Raise ``RunError`` unless the scheduler and workers have what the tasks need."""
    from toolkit_dask.remote import module_versions

    dists, bare = needed(task_modules)
    try:
        versions = client.get_versions(packages=dists)
    except Exception as exc:
        raise RunError(f"cannot read the versions installed on the Dask cluster at {where}: {exc}") from exc
    problems = mismatches(versions, dists)
    if bare and not problems:
        ours = {m: str(sys.modules[m].__version__) for m in bare}
        found = client.run(module_versions, bare, on_error="return")
        for addr, theirs in sorted(found.items()):
            if isinstance(theirs, BaseException):
                problems.append(f"worker {addr}: cannot check versions: {theirs}")
                continue
            problems += [
                f"worker {addr}: module {m} {theirs.get(m)} (here: {v})"
                for m, v in ours.items()
                if theirs.get(m) != v
            ]
    if problems:
        listed = "\n  ".join(problems)
        raise RunError(
            f"the Dask cluster at {where} cannot run this recipe's tasks:\n  {listed}\n"
            "install the same versions of toolkit, toolkit-dask and the plugins that provide"
            " the tasks on the scheduler and on every worker"
        )
