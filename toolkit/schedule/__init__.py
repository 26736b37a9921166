"""Scheduled runs: ``toolkit schedule``, a cron-like daemon without a server.

Where things live:

- ``spec``: the ``[schedule]`` table (:class:`ScheduleSpec`) and durations;
- ``cron``: the adapter over cronsim, ``@`` aliases;
- ``firing``: which slots fire when (pure: the time is passed in);
- ``state``: the state directory (lock, per-recipe state, ``log.jsonl``);
- ``recipes``: reading recipes, noticing edits;
- ``children``: starting and stopping runs as processes;
- ``daemon``: the loop; ``preview``: ``--next`` and ``--crontab``.
"""

from __future__ import annotations

from toolkit.schedule.spec import ScheduleSpec, parse_duration

__all__ = ["ScheduleSpec", "parse_duration"]
