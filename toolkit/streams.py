"""Printing is best effort: output that cannot be written never stops a command.

``toolkit run r.toml | head -1``, ``| true``, ``> /dev/full``, a closed stdout under a
service manager: the reader of the output went away or the output cannot take more.
None of that is a reason to stop a run, lose its records or change its exit code. So
the command line writes through :class:`BestEffort` streams: the first write that fails
turns the stream off (the rest of the output is dropped, silently: there is nowhere to
say so), and the file descriptor is pointed at ``/dev/null`` so that nothing buffered
fails again when Python flushes it at exit (which would print "Exception ignored" and
exit 120).

:func:`ensure_standard_fds` opens ``/dev/null`` on any of the descriptors 0, 1 and 2
that a parent left closed (``toolkit run >&-``): otherwise the next file toolkit opens
(``results.jsonl``) would take descriptor 1, and whatever a task or a program it runs
prints would land in it.
"""

from __future__ import annotations

import contextlib
import os
import sys

#: what a write to a broken stream raises: EPIPE, ENOSPC, EIO, EBADF (OSError);
#: a closed file object (ValueError)
_BROKEN = (OSError, ValueError)


class BestEffort:
    """A text stream whose writes never raise; it wraps ``stream`` (None: a stream
    that was never there, whose output is dropped)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.broken = stream is None

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except _BROKEN:
                self._break()
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except _BROKEN:
                self._break()

    def isatty(self) -> bool:
        if self.broken:
            return False
        try:
            return bool(self.stream.isatty())
        except _BROKEN:
            return False

    def _break(self) -> None:
        self.broken = True
        # what Python would otherwise try to flush again at exit goes to /dev/null
        with contextlib.suppress(Exception):
            fd = self.stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)

    def __getattr__(self, name: str):  # encoding, fileno, ... of the stream it wraps
        if self.stream is None:
            raise AttributeError(name)
        return getattr(self.stream, name)


def best_effort(stream):
    """``stream`` as a :class:`BestEffort` stream (itself if it is one already)."""
    return stream if isinstance(stream, BestEffort) else BestEffort(stream)


def ensure_standard_fds() -> None:
    """Open ``/dev/null`` on each of the descriptors 0, 1, 2 that is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: fd itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


@contextlib.contextmanager
def best_effort_stdio():
    """``sys.stdout`` and ``sys.stderr`` as best-effort streams while the block runs;
    what they buffered is flushed (best effort) at the end."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = best_effort(sys.stdout), best_effort(sys.stderr)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved
