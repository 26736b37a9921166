"""The contract between ``toolkit schedule`` and the runs it starts, written once.

A run's id is ``20261125-203000-1a2b``: its UTC start time (so ids sort in time order)
and 4 random hex digits. ``toolkit schedule`` picks the id of each run it starts and
passes it in :data:`ENV_RUN_ID`, with the firing time the run is for in
:data:`ENV_SCHEDULED_FOR`; ``toolkit run`` names its run directory after the one and
writes the other into the manifest.
"""

from __future__ import annotations

import os
import secrets
import time

#: the id the run must take (set by ``toolkit schedule``)
ENV_RUN_ID = "TOOLKIT_RUN_ID"
#: the firing time a scheduled run is for, ISO 8601 (set by ``toolkit schedule``)
ENV_SCHEDULED_FOR = "TOOLKIT_SCHEDULED_FOR"


def new_run_id(now: float | None = None) -> str:
    """``20261125-203000-1a2b``: UTC start time (sorts in time order) and 4 random hex digits."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


def run_id_from_environment() -> str | None:
    """The run id ``toolkit schedule`` chose for this run, if it started it."""
    return os.environ.get(ENV_RUN_ID) or None


def scheduled_for_from_environment() -> str | None:
    """The firing time this run is for, if ``toolkit schedule`` started it."""
    return os.environ.get(ENV_SCHEDULED_FOR) or None
