"""The ``toolkit`` command line: parse, call the library, return an exit code.

Subcommands are plugins (``toolkit_add_commands``), the built-in ones included. ``-p``
is read in a pre-parse, before the parser is built, because a plugin it names may
add subcommands.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

from toolkit.errors import ExitCode, ToolkitError, UsageError

#: typing.TYPE_CHECKING without importing typing (~4 ms): ``toolkit --help`` needs none
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

    from toolkit.manager import LoadSpec, Plugins

PROG = "toolkit"

# argparse passes each of its labels through gettext, which looks on disk for a message
# catalogue at every call: ~40 calls and ~160 stat()s to build toolkit's parser, nearly
# half of the time building it takes. The answer cannot change within a process: ask
# once per message.
if not hasattr(argparse._, "cache_info"):
    import functools

    argparse._ = functools.lru_cache(maxsize=None)(argparse._)  # type: ignore[attr-defined]


def preparse_plugins(argv: Sequence[str]) -> list[str]:
    """The values of every ``-p`` in argv (``-p X``, ``-pX``). (``--plugin`` is not a
    spelling of it: ``toolkit init --plugin NAME`` names a plugin to write.)"""
    found = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg == "-p":
            value = next(args, None)
            if value is not None:
                found.append(value)
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            found.append(arg[2:])
    return found


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (~1.5 ms of
    every start, for argparse's help formatter). Remembered per value of ``COLUMNS``:
    argparse makes a formatter for every argument it adds (~70 per start)."""
    env = os.environ.get("COLUMNS")
    columns = _columns.get(env)
    if columns is not None:
        return columns
    try:
        columns = int(env)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    _columns[env] = columns
    return columns


_columns: dict[str | None, int] = {}


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


def build_parser(plugins: Plugins) -> argparse.ArgumentParser:
    """The parser, with the subcommands plugins add. A plugin whose
    ``toolkit_add_commands`` raises, or adds a name another plugin loaded before it
    added, is named in a warning and left out (the parser is built again without it),
    so that every other command, ``--help`` and ``--version`` keep working."""
    from toolkit.hookcalls import call_leaving_out

    hook = "toolkit_add_commands"
    built: list[Any] = []  # the parser and its subparsers, as the last call made them

    def call(caller: Any) -> dict[str, BaseException]:
        built[:] = _new_parser(plugins)
        caller(subparsers=built[1])
        return {name: UsageError(message) for name, message in built[1].losers().items()}

    call_leaving_out(plugins.pm, hook, call, lambda name, exc: plugins.hook_failed(name, hook, exc))
    parser, subparsers = built
    plugins.commands = dict(subparsers.added)  # for `toolkit plugins -v`
    # list the subcommands in a stable, alphabetical order in --help
    subparsers._choices_actions.sort(key=lambda a: a.dest)
    return parser


def asks_for_help(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is ``--help`` (or ``-h``, or no command at all) with nothing
    else but ``-p`` and ``-v`` options: what :func:`builtin_help` answers. Anything
    else (abbreviations, ``--``, a ``-p`` without its value) is left to the parser."""
    rest = []
    args = iter(argv)
    for arg in args:
        if arg == "-p":
            value = next(args, None)
            if value is None or value.startswith("-"):
                return False
        elif arg.startswith("-p") and not arg.startswith("--"):
            if "=" in arg:  # argparse reads -p=X as X
                return False
        elif arg != "--verbose" and not (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            rest.append(arg)
    return rest in ([], ["-h"], ["--help"])


def builtin_help(argv: Sequence[str], load: LoadSpec) -> int | None:
    """``toolkit --help`` (or ``toolkit`` alone) when no plugin but the built-in ones
    adds subcommands (:func:`toolkit.manager.adds_no_commands`): the same parser, with
    the built-in commands listed from their table (``toolkit.builtin.commands``), found
    without pluggy or the built-in modules (half of the start-up). None when a plugin
    may add subcommands: the command line is then built as for any command."""
    from toolkit.builtin.commands import COMMANDS
    from toolkit.manager import adds_no_commands

    if not adds_no_commands(load):
        return None
    parser, subparsers = _top_parser()
    for plugin, name, text in COMMANDS:
        if plugin not in load.blocked:
            # only the name and the help of a command show in --help: no common options
            argparse._SubParsersAction.add_parser(subparsers, name, help=text, add_help=False)
    subparsers._choices_actions.sort(key=lambda a: a.dest)
    code = _parse(parser, argv)
    assert isinstance(code, int)  # no command was given
    return code


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of the parse: 2 for bad usage (one line
    on stderr), that of ``--help`` and ``--version``, 2 with the help for no command."""
    try:
        args = parser.parse_args(argv)
    except _UsageExit as exc:
        print(exc, file=sys.stderr)
        return ExitCode.USAGE
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return ExitCode.USAGE
    return args


class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """What ``toolkit_add_commands`` receives: ``add_parser`` gives each subcommand the
    common options, and notes which plugin adds which name; a name (or alias) that a
    plugin loaded earlier adds too is not added twice (the later plugin is refused)."""

    common: argparse.ArgumentParser
    owners: dict[Any, str]
    order: dict[str, int]
    added: dict[str, str]
    clashes: dict[str, str]

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:  # type: ignore[override]
        kwargs.setdefault("parents", [self.common])
        kwargs.setdefault("description", kwargs.get("help"))
        plugin = self._adding()
        for taken in (name, *kwargs.get("aliases", ())):
            other = self.added.get(taken)
            if other is None or other == plugin:
                continue
            # pluggy calls the plugin loaded last first: the one loaded first keeps the name
            early, late = sorted((other, plugin), key=lambda p: self.order.get(p, len(self.order)))
            self.clashes[late] = f"subcommand {taken!r} is already added by plugin {early!r}"
            return _Parser(prog=f"{PROG} {name}")  # a stand-in: the parser is built again
        for taken in (name, *kwargs.get("aliases", ())):
            self.added[taken] = plugin
        return super().add_parser(name, **kwargs)

    def _adding(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            found = self.owners.get(frame.f_code)
            if found is not None:
                return found
            frame = frame.f_back  # type: ignore[assignment]
        return ""

    def losers(self) -> dict[str, str]:
        return dict(self.clashes)


def _new_parser(plugins: Plugins) -> tuple[argparse.ArgumentParser, _Subcommands]:
    from toolkit.hookcalls import impl_codes

    parser, subparsers = _top_parser()
    subparsers.owners = impl_codes(plugins.pm, "toolkit_add_commands")
    subparsers.order = {info.name: i for i, info in enumerate(plugins.infos)}
    return parser, subparsers


def _top_parser() -> tuple[argparse.ArgumentParser, _Subcommands]:
    """The parser without subcommands, and the action that takes them."""
    from toolkit import __version__

    common = common_options()
    parser = _Parser(
        prog=PROG,
        description="Run batches of tasks described by TOML recipes.",
        parents=[common],
        epilog="Exit codes: 0 all succeeded, 1 a task failed, 2 bad usage or recipe, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"toolkit {__version__}")
    parser.register("action", "parsers", _Subcommands)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    assert isinstance(subparsers, _Subcommands)
    subparsers.common = common  # for toolkit_add_commands impls
    subparsers.added = {}
    subparsers.clashes = {}
    return parser, subparsers


def main(argv: Sequence[str] | None = None, *, plugins: Plugins | None = None) -> int:
    """Run the command line; return the exit code (never ``sys.exit``). ``plugins``: a
    loaded plugin manager to use instead of one built from ``-p`` and the environment
    (``toolkit.testing`` passes one; ``-p`` options still load onto it)."""
    from toolkit.streams import best_effort_stdio, ensure_standard_fds

    ensure_standard_fds()
    # printing is best effort: a closed pipe or a full disk behind stdout never stops a
    # command or changes its exit code (toolkit.streams)
    with best_effort_stdio():
        frozen = gc.get_freeze_count()
        try:
            return _main(list(sys.argv[1:] if argv is None else argv), plugins)
        finally:
            if not frozen:  # what _CollectorPaused set aside is collectable again
                gc.unfreeze()


class _CollectorPaused:
    """No garbage collection while the plugins load and the parser is built: thousands
    of objects that live as long as the process, which the collector would walk several
    times for nothing (~3 % of ``toolkit --help``). They are then frozen (set aside from
    later collections, until :func:`main` returns), so that turning the collector back
    on does not walk them all at once either; the command runs with it as it was."""

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if not gc.get_freeze_count():  # a process that froze objects itself: leave them be
            gc.freeze()
        if self.enabled:
            gc.enable()


def _main(argv: list[str], given: Plugins | None = None) -> int:
    verbose = any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    try:
        from toolkit.manager import LoadSpec, Plugins

        with _CollectorPaused():
            load = LoadSpec.from_environment(preparse_plugins(argv))
            if given is None and asks_for_help(argv):
                code = builtin_help(argv, load)
                if code is not None:
                    return code
            if given is None:
                plugins = Plugins(load).load_all()
            else:
                plugins = given
                plugins.load_options(load.options)
            args = _parse(build_parser(plugins), argv)
        if isinstance(args, int):
            return args
        args.plugin_manager = plugins
        code = args.handler(args)
        # a handler that returns nothing succeeded (as a function that returns None does
        # for sys.exit)
        return ExitCode.OK if code is None else int(code)
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
    """``toolkit`` and ``python -m toolkit``: :func:`main`, then the end of the process."""
    main_module = sys.modules.get("__main__")
    if main_module is not None and getattr(main_module, "__spec__", None) is None:
        # the console script. A spawned worker (spawn, forkserver) runs the main module
        # again, to find what it defines: this one would import the whole command line
        # into every worker (argparse..., ~10 % of a spawned instance's start), where
        # toolkit.__main__, which ``python -m toolkit`` names, imports nothing
        from importlib.machinery import ModuleSpec

        main_module.__spec__ = ModuleSpec("toolkit.__main__", None)
    end_process(main())


def end_process(code: int) -> NoReturn:
    """Exit with ``code``, the collector off and every object set aside from it: the
    interpreter's exit would otherwise walk every object (twice) for memory the system
    takes back anyway, ~9 % of ``toolkit --help``. Exit handlers still run (workers are
    joined, streams flushed); the command's own files are closed by then."""
    gc.disable()
    gc.freeze()
    sys.exit(code)
