"""Built-in plugin: write ``report.html`` into the run directory when a run ends.

Runs first among the ``toolkit_run_finish`` hooks (notifications link the report). The
report machinery is imported here, when a run ends, never at start-up.
"""

from __future__ import annotations

import sys

from toolkit.hookspecs import hookimpl


@hookimpl(tryfirst=True)
def toolkit_run_finish(run, summary):
    try:
        from toolkit.report.after_run import write_after_run

        write_after_run(run.run_dir, summary.duration_s)
    except Exception as exc:  # a report that cannot be written never changes how the run ended
        from toolkit.errors import describe_os_error
        from toolkit.records import describe

        why = describe_os_error(exc) if isinstance(exc, OSError) else describe(exc)  # a full disk, say
        try:
            print(f"toolkit: warning: report.html not written: {why}", file=sys.stderr)
        except (OSError, ValueError):
            pass
