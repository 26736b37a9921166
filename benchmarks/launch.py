"""Run ``toolkit`` as its console script would, then report this process's peak memory.

``python benchmarks/launch.py ARGS...`` is ``toolkit ARGS...`` (``toolkit.cli.main``,
then ``toolkit.cli.end_process``, as the console script does) plus one thing: at exit
it writes ``{"maxrss_mib": ..., "exit": ...}`` to the file named by
``TOOLKIT_BENCH_LAUNCH``: the peak resident memory of this process alone (the
toolkit's main process, not its workers), from exec to exit. Deliberately thin,
because under spawn (and forkserver on Python < 3.13.8) every worker re-imports the
main module.
"""

import sys


def peak_mib(resource) -> float:
    """This process's peak RSS: VmHWM, which exec resets. (On Linux ``ru_maxrss`` keeps
    the peak of the process image before exec too: the benchmark harness that forked
    this one, which may hold a million parsed records.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def main() -> int:
    import json
    import os
    import resource

    from toolkit.cli import main as toolkit_main

    code = 1
    try:
        code = int(toolkit_main(sys.argv[1:]))
    finally:
        out = os.environ.get("TOOLKIT_BENCH_LAUNCH")
        if out:
            with open(out, "w") as f:
                json.dump({"maxrss_mib": peak_mib(resource), "exit": code}, f)
    return code


if __name__ == "__main__":
    from toolkit.cli import end_process

    end_process(main())
