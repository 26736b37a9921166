"""Every key a recipe may have, with its type and meaning.

One declaration serves three readers: the loader (unknown keys, "did you mean"),
``toolkit schema`` (the JSON Schema editors use) and the reference page
``docs/recipe.md`` (a test keeps the page in step with these tables).
"""

from __future__ import annotations

import re

import attrs

#: recipe and task names: safe as a directory name and inside an instance id
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: matrix axis and include keys: usable as ${matrix.NAME} and as a keyword argument
AXIS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

START_METHODS = ("fork", "forkserver", "spawn")
SIZE_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*([kKmMgGtT]?)([iI]?[bB])?\s*$"
DURATION_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*$|^\s*((\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h|d)\s*)+$"


@attrs.frozen(kw_only=True)
class Key:
    """One key: ``kind`` is string, name, integer, boolean, duration, size, array, table or any."""

    kind: str
    doc: str
    default: object = None
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    items: str | None = None
    required: bool = False
    examples: tuple[object, ...] = ()


RECIPE = {
    "name": Key(
        kind="name",
        required=True,
        doc="The recipe's name: letters, digits, '.', '_', '-' (it names the run directory).",
        examples=("pi",),
    ),
    "description": Key(kind="string", default="", doc="One line about what the recipe does."),
    "plugins": Key(
        kind="array",
        items="string",
        default=[],
        doc="Plugin modules (importable names) or .py files (relative to this file) to load.",
        examples=(["pi_tasks.py"],),
    ),
    "include": Key(
        kind="array",
        items="string",
        default=[],
        doc="Recipe files merged underneath this one (deep merge; this file wins).",
        examples=(["base.toml"],),
    ),
}

RUN = {
    "executor": Key(
        kind="string",
        default="auto",
        doc="auto, process, pool, or an executor a plugin adds (dask).",
        examples=("auto", "process", "pool"),
    ),
    "workers": Key(
        kind="integer", minimum=1, doc="Parallel workers. Default: the CPUs this process may use."
    ),
    "retries": Key(kind="integer", minimum=0, default=0, doc="Retries per instance, for every task."),
    "timeout": Key(
        kind="duration",
        doc="Time limit per attempt: '250ms', '30s', '5m', '2h' or seconds; 0 = none. Default: none.",
    ),
    "keep_going": Key(
        kind="boolean",
        default=False,
        doc="false: after the first final failure start no new instance; true: run all that can run.",
    ),
    "max_tasks_per_worker": Key(
        kind="integer", minimum=0, default=0, doc="Pool workers are replaced after N instances; 0 = never."
    ),
    "start_method": Key(
        kind="string",
        enum=START_METHODS,
        doc="How worker processes start. Default: the platform's.",
    ),
    "workdir": Key(
        kind="string",
        default=".",
        doc="The instances' working directory, relative to the recipe's directory (made if missing).",
    ),
    "cache": Key(
        kind="boolean",
        default=False,
        doc="true: skip instances whose fingerprint ran ok before (a task's own cache wins).",
    ),
    "memory": Key(
        kind="size",
        doc="Memory budget of the instances that run at once (their tasks' `memory` added up)."
        " Default: the memory available on this machine when the run starts.",
        examples=("16G",),
    ),
}

OUTPUT = {
    "dir": Key(
        kind="string",
        default="runs",
        doc="Run directories go to <dir>/<recipe.name>/<run-id>/ (relative to the cwd).",
    ),
    "formats": Key(
        kind="array",
        items="string",
        default=["jsonl"],
        doc="Result sinks: jsonl (always written), csv, or a sink a plugin adds.",
        examples=(["jsonl", "csv"],),
    ),
    "keep": Key(
        kind="integer",
        minimum=0,
        default=0,
        doc="Keep the N newest runs of this recipe; older run directories are deleted when a run ends. 0 = all.",
    ),
}

NOTIFY = {
    "on": Key(
        kind="array",
        items="string",
        default=["failure"],
        doc="When to notify: failure (any end but succeeded), success, always.",
        examples=(["failure"], ["always"]),
    ),
    "webhook": Key(
        kind="string",
        doc="A URL that receives a POST of the run's JSON summary; never printed (use ${secret.NAME}).",
        examples=("${secret.HOOK_URL}",),
    ),
    "command": Key(
        kind="string",
        doc="A shell command run with TOOLKIT_RUN_DIR, TOOLKIT_RUN_STATUS and TOOLKIT_REPORT set.",
    ),
    "timeout": Key(kind="duration", default="10s", doc="Time limit per webhook attempt and for the command."),
    "retries": Key(
        kind="integer",
        minimum=0,
        default=2,
        doc="Webhook attempts after the first (errors, timeouts, 429, 5xx).",
    ),
}

SCHEDULE = {
    "cron": Key(
        kind="string", doc="A cron expression ('*/30 * * * *') or @hourly, @daily, @weekly, @monthly."
    ),
    "every": Key(kind="duration", doc="Instead of cron: fire at this interval ('15m')."),
    "timezone": Key(kind="string", default="UTC", doc="IANA time zone of the cron times."),
    "catchup": Key(
        kind="string",
        enum=("none", "latest", "all"),
        default="latest",
        doc="Runs missed while the scheduler was down: none, the latest, or all.",
    ),
    "max_catchup": Key(
        kind="integer", minimum=0, default=10, doc="At most this many missed runs with catchup = 'all'."
    ),
    "overlap": Key(
        kind="string",
        enum=("skip", "queue"),
        default="skip",
        doc="When the previous run is still going: skip this firing, or queue it.",
    ),
    "jitter": Key(kind="duration", default="0s", doc="A delay up to this long, fixed per recipe."),
}

TASK = {
    "name": Key(kind="name", required=True, doc="Unique in the recipe; letters, digits, '.', '_', '-'."),
    "uses": Key(
        kind="string", required=True, doc="A task name registered by a plugin ('pi.estimate', 'shell')."
    ),
    "params": Key(
        kind="table",
        default={},
        doc="Keyword arguments for the task; strings may use ${vars.X}, ${env.X}, ${matrix.X}.",
    ),
    "matrix": Key(
        kind="table",
        default={},
        doc="Sweep: axis = [values], { range = [start, stop(, step)] }, { glob = PATTERN } or"
        " { lines = FILE }; plus include (a list, { csv = FILE } or { jsonl = FILE }) and exclude.",
    ),
    "needs": Key(
        kind="array",
        items="string",
        default=[],
        doc="Tasks whose every instance must succeed first; their results arrive as `inputs`.",
    ),
    "retries": Key(kind="integer", minimum=0, doc="Retries per instance. Default: run.retries."),
    "timeout": Key(kind="duration", doc="Time limit per attempt. Default: run.timeout."),
    "isolate": Key(
        kind="boolean", default=False, doc="true: each instance gets its own process (hard kill on timeout)."
    ),
    "files": Key(
        kind="array",
        items="string",
        default=[],
        doc="Input files, relative to the recipe's directory; globs and ${matrix.X} allowed.",
        examples=(["data/${matrix.sample}.csv"],),
    ),
    "outputs": Key(
        kind="array",
        items="string",
        default=[],
        doc="Files each instance must produce (else it fails: MissingOutput); ${matrix.X} allowed.",
        examples=(["out/${matrix.sample}.parquet"],),
    ),
    "cache": Key(kind="boolean", doc="Use the results cache for this task. Default: run.cache."),
    "cpus": Key(
        kind="integer",
        minimum=1,
        default=1,
        doc="CPUs each instance uses: instances run at once only while their cpus fit in run.workers;"
        " exported as OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS.",
    ),
    "memory": Key(
        kind="size",
        doc="Memory limit per instance ('512M', '4G'): it runs in its own process, counts against"
        " run.memory, and is stopped (failed, MemoryLimitExceeded) if it uses more. Default: none.",
        examples=("512M", "4G"),
    ),
}

TOP = {
    "recipe": Key(kind="table", required=True, doc="The recipe's name, plugins and includes."),
    "vars": Key(kind="table", default={}, doc="Free values, referenced as ${vars.NAME}."),
    "run": Key(kind="table", default={}, doc="How instances run: executor, workers, retries, timeouts."),
    "output": Key(kind="table", default={}, doc="Where results go and in which formats."),
    "notify": Key(kind="table", doc="Tell someone how a run ended: a webhook and/or a command."),
    "executor": Key(kind="table", default={}, doc="[executor.NAME]: options handed to the executor NAME."),
    "schedule": Key(kind="table", doc="When `toolkit schedule` fires the recipe."),
    "task": Key(kind="array", items="table", required=True, doc="[[task]]: the tasks, one table each."),
}

TABLES = {
    "": TOP,
    "recipe": RECIPE,
    "run": RUN,
    "output": OUTPUT,
    "notify": NOTIFY,
    "schedule": SCHEDULE,
    "task": TASK,
}
