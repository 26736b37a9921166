"""How many threads numeric libraries start: the environment variables they read,
set to an instance's ``cpus`` in the process that runs it, and to one while the
recipe's plugin files load in the process that forks workers. Only ``os`` here:
workers import this module."""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (workers)
if TYPE_CHECKING:
    from collections.abc import Iterator

#: what numeric libraries read for their thread count: set to a task's ``cpus``
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_user_threads: list[frozenset[str]] = []


def export_cpus(cpus: int) -> None:
    """Tell the numeric libraries this instance loads (and the programs it runs) to use
    ``cpus`` threads, through :data:`THREAD_VARS`, except those the user set."""
    environ = os.environ
    if not _user_threads:  # this process's first call: what is set now is the user's
        _user_threads.append(frozenset(name for name in THREAD_VARS if name in environ))
    value = str(cpus)
    user = _user_threads[0]
    for name in THREAD_VARS:
        if name not in user and environ.get(name) != value:
            environ[name] = value


@contextlib.contextmanager
def one_thread_imports() -> Iterator[None]:
    """While the recipe's plugin files load in the process that forks the workers: a
    numeric library they import starts with one thread, not one per core, since forked
    workers keep the thread pools of what they inherit (2 workers of 2 BLAS threads
    each on 2 cores). The environment is as it was afterwards, so that each instance
    still gets its own ``cpus`` (:func:`export_cpus`), what the user set stays the
    user's, and a caller's process (the API) is left as it was."""
    environ = os.environ
    unset = [name for name in THREAD_VARS if name not in environ]
    environ.update(dict.fromkeys(unset, "1"))
    try:
        yield
    finally:
        for name in unset:
            environ.pop(name, None)
