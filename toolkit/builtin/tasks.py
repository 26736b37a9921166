"""Built-in tasks: ``shell`` runs a command line, ``python`` calls ``module:function``."""

from __future__ import annotations

from typing import Any

from toolkit import hookimpl


class CommandFailed(Exception):
    """A shell task's command exited with a non-zero code."""


def shell(
    # a list: words, each one argument; a word that is one ${...} keeps the value's type
    cmd: str | list[Any],
    shell: bool = False,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
    **matrix: Any,
) -> dict[str, Any]:
    """Run a command line; record its exit code, stdout and stderr.

    Runs without a shell unless ``shell = true``. In a recipe, ``cmd`` is split into
    words before ``${...}`` values are filled in, so that each value is one argument
    (it arrives here as a list); with ``shell = true`` the values are shell-quoted
    instead. Fails when the exit code is not 0, unless ``check = false``. Other params
    (matrix values) are accepted for use as ``${matrix.NAME}`` in ``cmd``.
    """
    import os
    import shlex
    import subprocess

    if isinstance(cmd, list):
        words = [word if isinstance(word, str) else _text(word) for word in cmd]
        args: str | list[str] = shlex.join(words) if shell else words
    else:
        args = cmd if shell else shlex.split(cmd)
    full_env = {**os.environ, **{k: str(v) for k, v in (env or {}).items()}} if env else None
    proc = subprocess.run(
        args,
        shell=shell,
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    result = {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        detail = ("\n" + "\n".join(tail)) if tail else ""
        raise CommandFailed(f"command exited with code {proc.returncode}: {args!r}{detail}")
    return result


def _text(value: Any) -> str:
    """A value that is a whole word of the command, as text (as it would be inside one)."""
    from toolkit.recipe.interpolate import render

    return render(value)


def python(function: str, inputs: list[Any] | None = None, **params: Any) -> Any:
    """Call ``module:function`` with the other params as keyword arguments.

    In a task that ``needs`` others, the function also gets ``inputs`` if it takes it."""
    import importlib

    module_name, sep, attr = function.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"function must look like 'module:function', got {function!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if inputs is not None and _takes_inputs(target):
        params["inputs"] = inputs
    return target(**params)


_TAKES_INPUTS: dict[Any, bool] = {}


def _takes_inputs(target: Any) -> bool:
    """Whether ``target`` has a parameter ``inputs`` (asked once per function and process)."""
    try:
        return _TAKES_INPUTS[target]
    except (KeyError, TypeError):
        pass
    import inspect

    try:
        takes = "inputs" in inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin or a class without a signature
        takes = False
    try:
        _TAKES_INPUTS[target] = takes
    except TypeError:  # not hashable: asked again next time
        pass
    return takes


@hookimpl
def toolkit_register_tasks(registry):
    # imported here, in the main process before a run starts, so that workers forked for
    # `shell` instances inherit it (subprocess comes with multiprocessing's Manager); not
    # at import: every start of the command line would pay for it
    import shlex  # noqa: F401

    registry.add(shell, name="shell")
    registry.add(python, name="python")
