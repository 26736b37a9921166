"""``toolkit ui``: a local web app over run history, live runs, reports, logs, schedules."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

DEFAULT_OUTPUT = "runs"
DEFAULT_PORT = 8765


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser(
        "ui",
        help=HELP["ui"],
        description="Serve a read-only web app over the runs under --output (and the schedules of a"
        " --state directory). It listens on 127.0.0.1 unless --host says otherwise and prints a URL with"
        " a token: a request without the token gets 403. It never starts, stops or deletes anything."
        " Ctrl-C stops it.",
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        default=DEFAULT_OUTPUT,
        help=f"where run directories are (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--state", metavar="DIR", help="a `toolkit schedule --state` directory: show its schedules"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0 picks a free one)"
    )
    p.set_defaults(handler=ui_command)


def ui_command(args) -> int:
    from toolkit.ui.server import main

    return main(args.output, args.state, args.host, args.port)
