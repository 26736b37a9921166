"""The ``toolkit`` command line: parse, call the library, return an exit code.

Subcommands are plugins (``toolkit_add_commands``), the built-in ones included. ``-p``
is read in a pre-parse, before the parser is built, because a plugin it names may
add subcommands.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from toolkit.errors import ExitCode, ToolkitError

if TYPE_CHECKING:
    from collections.abc import Sequence

PROG = "toolkit"


def preparse_plugins(argv: Sequence[str]) -> list[str]:
    """The values of every ``-p`` in argv (``-p X``, ``-pX``, ``--plugin X``)."""
    found = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg in ("-p", "--plugin"):
            value = next(args, None)
            if value is not None:
                found.append(value)
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            found.append(arg[2:])
    return found


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (~1.5 ms of
    every start, for argparse's help formatter)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the same width, found without importing shutil."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width=None):
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``argparse.RawDescriptionHelpFormatter``, as :class:`HelpFormatter`."""


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts, before or after its name."""
    common = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
    common.add_argument(
        "-p",
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="load a plugin module or .py file; -p no:NAME blocks one (repeatable)",
    )
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="more output; tracebacks on errors"
    )
    return common


class _Parser(argparse.ArgumentParser):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str):  # exit code 2 without SystemExit leaking through main()
        self.print_usage(sys.stderr)
        raise _UsageExit(f"{self.prog}: error: {message}")


class _UsageExit(Exception):
    pass


def build_parser(plugins) -> argparse.ArgumentParser:
    common = common_options()
    parser = _Parser(
        prog=PROG,
        description="Run batches of tasks described by TOML recipes.",
        parents=[common],
        epilog="Exit codes: 0 all succeeded, 1 a task failed, 2 bad usage or recipe, 130 interrupted.",
    )
    from toolkit import __version__

    parser.add_argument("--version", action="version", version=f"toolkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.common = common  # type: ignore[attr-defined]  # for toolkit_add_commands impls

    original = subparsers.add_parser

    def add_parser(name, **kwargs):
        kwargs.setdefault("parents", [common])
        kwargs.setdefault("description", kwargs.get("help"))
        return original(name, **kwargs)

    subparsers.add_parser = add_parser  # type: ignore[method-assign]
    plugins.hook.toolkit_add_commands(subparsers=subparsers)
    # list the subcommands in a stable, alphabetical order in --help
    subparsers._choices_actions.sort(key=lambda a: a.dest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from toolkit.streams import best_effort_stdio, ensure_standard_fds

    ensure_standard_fds()
    # printing is best effort: a closed pipe or a full disk behind stdout never stops a
    # command or changes its exit code (toolkit.streams)
    with best_effort_stdio():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    verbose = any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    try:
        from toolkit.manager import LoadSpec, Plugins

        load = LoadSpec.from_environment(preparse_plugins(argv))
        plugins = Plugins(load).load_all()
        parser = build_parser(plugins)
        try:
            args = parser.parse_args(argv)
        except _UsageExit as exc:
            print(exc, file=sys.stderr)
            return ExitCode.USAGE
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return ExitCode.USAGE
        args.plugin_manager = plugins
        return int(handler(args))
    except ToolkitError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def console_main() -> None:  # pragma: no cover - the console-script entry point
    sys.exit(main())
