"""The built-in subcommands, one plugin module each.

:data:`COMMANDS` names them and their one-line help, which each module's
``toolkit_add_commands`` passes to ``add_parser``: ``toolkit --help`` lists them from
here without importing those modules, pluggy or the parsers (``toolkit.cli``).
"""

#: (plugin, command, one-line help) of each built-in subcommand
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("builtin.run", "run", "run a recipe"),
    ("builtin.plan", "plan", "dry run: the expanded instances, their order, the executor chosen and why"),
    (
        "builtin.validate",
        "validate",
        "validate recipes (format, task names, params, executors); runs nothing",
    ),
    ("builtin.tasks-command", "tasks", "list registered tasks: name, plugin, signature, first doc line"),
    (
        "builtin.plugins-command",
        "plugins",
        "list plugins: name, version, source, hooks; failed ones with why",
    ),
    (
        "builtin.init",
        "init",
        "write a starter recipe and its task module, or (--plugin NAME) a plugin distribution",
    ),
    ("builtin.runs", "runs", "list earlier runs: id, recipe, status, counts, duration, start"),
    ("builtin.runs", "show", "one run's summary and its failures"),
    (
        "builtin.schema",
        "schema",
        "print the JSON Schema of the recipe format (for editors that validate TOML)",
    ),
    ("builtin.schedule", "schedule", "run recipes on their [schedule]: a cron-like daemon in the foreground"),
    (
        "builtin.report-command",
        "report",
        "(re)write a run's report.html: timeline, durations, failures, every instance",
    ),
    ("builtin.ui", "ui", "a local web app: runs (live progress), reports, instance logs, schedules"),
    ("builtin.cache", "cache", "show or empty the results cache of recipes (info | clear [TASK])"),
)

#: one-line help by command
HELP = {command: text for _, command, text in COMMANDS}
