"""The ``[executor.dask]`` table: what it may hold, checked without importing Dask.

Keys either choose the cluster (``address``, ``scheduler_file``), tune the connection
(``timeout``), or are handed to ``distributed.LocalCluster`` under the same name when
the executor starts a cluster of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any

import attrs

#: keys passed on to LocalCluster unchanged, with what each accepts
LOCAL_CLUSTER_KEYS: dict[str, str] = {
    "threads_per_worker": "an integer >= 1",
    "memory_limit": "bytes (an integer), a string such as '4GiB', 'auto', or 0 for no limit",
    "processes": "true or false",
    "dashboard_address": "an address such as '127.0.0.1:8787', or false for no dashboard",
}
CONNECT_KEYS = ("address", "scheduler_file")
KEYS = (*CONNECT_KEYS, "timeout", *LOCAL_CLUSTER_KEYS)

#: what LocalCluster gets unless the table says otherwise; every socket on 127.0.0.1.
#: Workers are threads of the toolkit's process: tasks run in runner processes either
#: way, and worker processes would only add an interpreter each that imports Dask
#: (seconds of start and CPU on a small machine: see the README's "Cost")
LOCAL_DEFAULTS: dict[str, Any] = {
    "threads_per_worker": 1,
    "processes": False,
    "dashboard_address": "127.0.0.1:0",
}
DEFAULT_TIMEOUT = 30.0


def _duration(value: object) -> float:
    """Seconds from ``"30s"``-style durations, read as the recipe reads its own."""
    try:
        from toolkit.durations import parse_duration
    except ImportError:  # toolkit 0.1 before the module moved
        from toolkit.recipe.durations import parse_duration

    return parse_duration(value)


def _address_problem(address: str) -> str | None:
    """What is wrong with the form of ``[scheme://]host[:port]``; whether a scheduler
    answers there is for the run to find out."""
    _scheme, _, rest = address.rpartition("://")
    host, colon, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not colon:
        host, port = rest, ""
    if not host.strip("[]"):
        return f"address: {address!r} names no host (for example tcp://10.0.0.5:8786)"
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        return f"address: {address!r}: the port must be a number from 1 to 65535"
    return None


def _problem(key: str, value: Any) -> str | None:
    """What is wrong with one known key's value, or None."""
    if key in ("address", "scheduler_file"):
        if not isinstance(value, str) or not value.strip():
            return f"{key}: must be a non-empty string, got {value!r}"
        if key == "address":
            return _address_problem(value)
    elif key == "timeout":
        try:
            if _duration(value) <= 0:
                return "timeout: must be more than 0 seconds"
        except ValueError as exc:
            return f"timeout: {exc}"
    elif key == "threads_per_worker":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"threads_per_worker: must be {LOCAL_CLUSTER_KEYS[key]}, got {value!r}"
    elif key == "memory_limit":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return f"memory_limit: must be {LOCAL_CLUSTER_KEYS[key]}, got {value!r}"
    elif key == "processes":
        if not isinstance(value, bool):
            return f"processes: must be {LOCAL_CLUSTER_KEYS[key]}, got {value!r}"
    elif key == "dashboard_address" and not (value is False or (isinstance(value, str) and value)):
        return f"dashboard_address: must be {LOCAL_CLUSTER_KEYS[key]}, got {value!r}"
    return None


def check_options(table: Mapping[str, Any]) -> list[str]:
    """Problems with an ``[executor.dask]`` table (an empty list when it is fine)."""
    problems = []
    for key, value in table.items():
        if key not in KEYS:
            close = get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(KEYS)})"
            problems.append(f"unknown key {key!r}{hint}")
            continue
        problem = _problem(key, value)
        if problem:
            problems.append(problem)
    if "address" in table and "scheduler_file" in table:
        problems.append("give address or scheduler_file, not both")
    if any(k in table for k in CONNECT_KEYS):
        local = sorted(k for k in table if k in LOCAL_CLUSTER_KEYS)
        if local:
            problems.append(
                f"{', '.join(local)}: only apply to the LocalCluster started without an address;"
                " configure the workers of a running cluster where they are started"
            )
    return problems


@attrs.frozen(kw_only=True)
class DaskOptions:
    """A checked ``[executor.dask]`` table."""

    address: str | None = None
    scheduler_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    local: tuple[tuple[str, Any], ...] = ()

    @property
    def external(self) -> bool:
        return self.address is not None or self.scheduler_file is not None

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> DaskOptions:
        problems = check_options(table)
        if problems:
            from toolkit.errors import UsageError

            raise UsageError("[executor.dask] " + "; ".join(problems))
        local = {**LOCAL_DEFAULTS, **{k: v for k, v in table.items() if k in LOCAL_CLUSTER_KEYS}}
        if local.get("dashboard_address") is False:
            local["dashboard_address"] = None
        return cls(
            address=table.get("address"),
            scheduler_file=table.get("scheduler_file"),
            timeout=_duration(table["timeout"]) if "timeout" in table else DEFAULT_TIMEOUT,
            local=tuple(sorted(local.items())),
        )

    def describe(self) -> str:
        if self.address:
            return self.address
        if self.scheduler_file:
            return f"the scheduler in {self.scheduler_file}"
        return "a LocalCluster"
