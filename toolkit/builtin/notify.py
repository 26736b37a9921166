"""Built-in plugin: ``[notify]`` sends a webhook and/or runs a command when a run ends.

After the report (which the payload names), before retention. Nothing is imported
unless the recipe has a ``[notify]`` table.
"""

from __future__ import annotations

from toolkit.hookspecs import hookimpl


@hookimpl
def toolkit_run_finish(run, summary):
    settings = getattr(run.recipe, "notify", None)
    if settings is None:
        return
    from toolkit.notify import notify

    try:
        notify(
            settings, run.run_dir, summary.status, summary.counts, cwd=getattr(run.recipe, "base_dir", None)
        )
    except Exception as exc:  # a bug here must not change how the run ended either
        from toolkit.notify import Log, _scrub

        text = f"failed: {type(exc).__name__}: {exc}"
        Log(run.run_dir).write(_scrub(text, settings.webhook) if settings.webhook else text, problem=True)
