"""Imported in the fork server of a run (a preload of ``forkserver``), and only there:
the fork server exits with the process that started it, ``toolkit run`` or the API's
caller.

The fork server's children, the run's workers, die with it (``PR_SET_PDEATHSIG``). But
multiprocessing keeps a fork server alive while any of its children lives, since each
holds the server's end-of-clients pipe: after a SIGKILL of ``toolkit run`` the server
and the workers that ran Python waited on each other until the tasks ended. Their
environments show no run mark (they never ``exec``), so the janitor cannot find them.

Linux only; elsewhere the fork server stays until its last child ends (no thread here:
the fork server forks).
"""

from __future__ import annotations

import os

from toolkit.execution.containment import SIGKILL, prctl

PR_SET_PDEATHSIG = 1
if prctl(PR_SET_PDEATHSIG, int(SIGKILL)) and os.getppid() == 1:  # it died before this took effect
    os._exit(1)
