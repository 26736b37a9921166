"""Built-in plugin: ``[output] keep = N`` deletes older runs of the recipe when a run ends.

Runs last among the ``toolkit_run_finish`` hooks, after the report and notifications.
"""

from __future__ import annotations

import sys

from toolkit.hookspecs import hookimpl


@hookimpl(trylast=True)
def toolkit_run_finish(run):
    keep = getattr(getattr(run.recipe, "output", None), "keep", 0)
    if not keep:
        return
    try:
        from toolkit.store.retention import prune

        result = prune(run.run_dir.parent, keep)
        problems = [f"{path.name}: {why}" for path, why in result.failed]
    except Exception as exc:  # retention never changes how the run ended
        problems = [f"{type(exc).__name__}: {exc}"]
    if problems:
        try:
            print(f"toolkit: warning: [output] keep: could not delete {'; '.join(problems)}", file=sys.stderr)
        except (OSError, ValueError):
            pass
