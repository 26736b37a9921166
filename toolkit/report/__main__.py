"""``python -m toolkit.report RUN_DIR``: the background writer of a run's report
(started by :mod:`toolkit.report.after_run`); not a command for people, who use
``toolkit report``."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m toolkit.report RUN_DIR (people: toolkit report RUN)", file=sys.stderr)
        return 2
    try:
        os.nice(10)  # after the run: whatever runs next comes first
    except (AttributeError, OSError):
        pass
    from toolkit.report.html import write_report

    try:
        write_report(argv[0])
    except Exception as exc:  # the run directory was deleted or moved meanwhile
        print(f"toolkit report: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
