"""The toolkit's error model.

Every error a user can cause derives from :class:`ToolkitError`, carries a message
written for that user and an exit code. The CLI catches only this base class: anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    TASK_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class ToolkitError(Exception):
    """An error with a message meant for the user of the command line."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ToolkitError):
    """Bad command-line usage: an unknown flag value, a missing file."""


class RecipeError(ToolkitError):
    """One problem in a recipe: ``pi.toml:12: [task.estimate] retries: must be >= 0``."""

    def __init__(self, path: str | None, where: str, problem: str, line: int | None = None) -> None:
        self.path = path
        self.where = where
        self.problem = problem
        self.line = line
        location = path or "<recipe>"
        if line is not None:
            location = f"{location}:{line}"
        prefix = f"{where}: " if where else ""
        super().__init__(f"{location}: {prefix}{problem}")


class RecipeErrors(ToolkitError):
    """Several problems of one recipe, reported together."""

    def __init__(self, errors: list[RecipeError]) -> None:
        self.errors = list(errors)
        if len(self.errors) == 1:
            message = self.errors[0].message
        else:
            lines = [f"{len(self.errors)} problems in the recipe:"]
            lines += [f"  {e.message}" for e in self.errors]
            message = "\n".join(lines)
        super().__init__(message)


class PluginLoadError(ToolkitError):
    """A plugin could not be imported or registered."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"plugin {name!r} failed to load: {reason}")


class TaskRegistrationError(ToolkitError):
    """A plugin tried to register something the toolkit cannot run."""


class RunError(ToolkitError):
    """A run cannot start or resume (for instance a resume that does not match)."""


class StorageError(RunError):
    """The run's surroundings cannot hold it: an output directory that cannot be made or
    written, a path that is a file, a full disk, the file size limit."""

    @classmethod
    def from_os_error(cls, exc: OSError, doing: str) -> StorageError:
        """``cannot write runs/pi/.../results.jsonl: no space left on device``."""
        return cls(f"{doing}: {describe_os_error(exc, known_path=doing)}")


def describe_os_error(exc: OSError, known_path: str = "") -> str:
    """What went wrong, for a person: the path (unless ``known_path`` names it already)
    and the cause, with a hint where one helps."""
    import errno

    reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    hint = {
        errno.EFBIG: " (the file size limit: see `ulimit -f`)",
        errno.ENOSPC: " (free some space, or use --output DIR elsewhere)",
        errno.EDQUOT: " (free some space, or use --output DIR elsewhere)",
    }.get(exc.errno or 0, "")
    path = f"{exc.filename}: " if exc.filename is not None and str(exc.filename) not in known_path else ""
    return f"{path}{reason}{hint}"


class PluginError(ToolkitError):
    """A plugin's hook implementation raised: ``plugin 'NAME' failed in toolkit_HOOK: ...``."""

    def __init__(self, plugin: str | None, hook: str, exc: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.exc = exc
        who = f"plugin {plugin!r}" if plugin else "a plugin"
        super().__init__(f"{who} {self.failure}")

    @property
    def failure(self) -> str:
        """``failed in toolkit_HOOK: ...``, without the plugin's name."""
        from toolkit.records import describe

        exc = self.exc
        what = str(exc) if isinstance(exc, ToolkitError) else describe(exc)
        return f"failed in {self.hook}: {what}"
