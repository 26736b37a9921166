"""The command line of the built-in ``shell`` task, read so that a value is one argument.

``params.cmd`` of a ``uses = "shell"`` task is split into words *before* references are
filled in, so that a value with spaces or quotes (``my file's.csv``) stays one argument:
the task receives the words as a list (a line without references stays a string, split
the same way by the task). With ``shell = true`` the line goes to a shell
as written, and every value filled into it is shell-quoted instead. A value is never
read as shell syntax; write pipes and redirections in ``cmd`` itself.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from toolkit.recipe.interpolate import InterpolationError, Ref, escape, parse

SHELL_TASK = "shell"
COMMAND = "cmd"

#: stands for a reference while the line is split: no shell syntax, never in TOML text
_MARK = "\0{}\0"
_PLAIN = re.compile(r"[^'\"\\\s]*(?:[ \t\r\n]+[^'\"\\\s]*)*")


def command_mode(uses: Any, params: Any, shell: Any) -> str | None:
    """``"words"`` (split, then fill), ``"quoted"`` (fill, shell-quoted) or None (not a
    ``shell`` task's string ``cmd``). ``shell`` is the resolved ``params.shell``."""
    if uses != SHELL_TASK or not isinstance(params, dict):
        return None
    cmd = params.get(COMMAND)
    if not isinstance(cmd, str) or "${" not in cmd:
        return None  # nothing filled in: the task splits the line itself, as the recipe shows it
    return "quoted" if shell is True else "words"


def split_words(cmd: str) -> list[str]:
    """``cmd`` (recipe spelling) as words, like a POSIX shell splits it; each word keeps
    its ``${...}`` references (a reference is never split) in recipe spelling.
    Raises InterpolationError (a bad reference) or ValueError (unbalanced quotes)."""
    refs: list[str] = []
    marked = []
    for part in parse(cmd):
        if isinstance(part, Ref):
            marked.append(_MARK.format(len(refs)))
            refs.append(part.text)
        else:
            marked.append(part)
    line = "".join(marked)
    # no quotes, backslashes or other whitespace than ASCII's: split() splits it as
    # shlex does, ten times faster (a recipe may have 100,000 shell tasks)
    words = line.split() if _PLAIN.fullmatch(line) else shlex.split(line)
    out = []
    for word in words:
        pieces = word.split("\0")
        # pieces alternate: literal, reference number, literal, ...
        out.append("".join(escape(p) if i % 2 == 0 else refs[int(p)] for i, p in enumerate(pieces)))
    return out


def quote(text: str) -> str:
    return shlex.quote(text)


__all__ = ["COMMAND", "SHELL_TASK", "InterpolationError", "command_mode", "quote", "split_words"]
