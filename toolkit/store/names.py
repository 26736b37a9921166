"""File names the run directory gives to instances (their logs, their scratch folders).

A leaf module: worker processes import it (through :mod:`toolkit.context`), so it
imports nothing.
"""

from __future__ import annotations

import os

#: the folder of the instances' log files, in a run directory
LOGS = "logs"
#: the folder of the instances' scratch directories, in a run directory
SCRATCH = "scratch"


def safe_name(instance_id: str) -> str:
    """An instance id made safe as a file name (``/`` and NUL replaced)."""
    return instance_id.replace(os.sep, "_").replace("\0", "_")[:200]


def log_name(instance_id: str) -> str:
    """The name of an instance's log file in the run's ``logs/`` folder."""
    return f"{safe_name(instance_id)}.log"
