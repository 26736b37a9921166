"""The zygote: a process that forks the ``process`` executor's instances (``fork`` start
method), so that the supervisor does not.

A fork copies the page tables of the process that forks, and while the child lives,
every page either process writes to is copied first (copy-on-write). The supervisor
works all the time (records, sinks, progress): each instance it forked made it copy
the pages it wrote to again, and its fork was ~40 % of its CPU per instance. The zygote
is forked once, when the executor starts, and then only forks: a child it forks shares
pages with a process that writes next to none, and the supervisor's pages are shared
with no child that comes and goes.

The supervisor sends each request on a Unix socket: the batch (pickled; the child
unpickles it) and the write end of the instance's pipe. The zygote forks, opens a pidfd
of the child and sends it back with its pid. It reaps a child only when the supervisor
asks (:meth:`ZygoteChild.join`): until then the child stays a zombie, so that its pid,
which the supervisor signals (its process group), is no one else's. Each child dies
with the zygote (``PR_SET_PDEATHSIG``), and the zygote with the supervisor; the zygote
carries the run's mark, which the janitor sweeps.

An instance sees the supervisor's memory as it was when the executor started (as a
pool worker does), not as it is when the instance starts.

If the zygote dies (killed), the instances it forked die with it and are recorded
``crashed``; the supervisor forks the rest itself. One it was forking as it died, whose
pid never came back, runs again, as a batch does whose pool worker died before saying
it had started it.

Linux only (pidfds, ``SCM_RIGHTS``); elsewhere the supervisor forks its instances itself.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import sys

from toolkit.execution.containment import ENV_TOKEN, SIGKILL, has_pidfds
from toolkit.execution.procs import ForkedProcess, _forked_child, die_with_parent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: the largest request the socket carries (a batch with a large input goes without the zygote)
MAX_REQUEST = 1 << 16


class ZygoteGone(Exception):
    """The zygote cannot fork any more (it died): the supervisor forks itself."""


class Zygote:
    """The supervisor's end of a zygote process."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    @classmethod
    def start(cls, setup: Any, token: str, spill: str) -> Zygote | None:
        """Fork the zygote (None where it cannot work: no pidfds or fd passing)."""
        if not (sys.platform.startswith("linux") and has_pidfds() and hasattr(socket, "send_fds")):
            return None
        import warnings

        for stream in (sys.stdout, sys.stderr):  # or the zygote's children would write them again
            with contextlib.suppress(Exception):
                stream.flush()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with warnings.catch_warnings():  # as in Janitor.start: the child runs no thread
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the zygote (its behaviour is tested)
                code = 1
                try:
                    ours.close()
                    _serve(theirs, setup, token, spill)
                    code = 0
                finally:
                    os._exit(code)
        finally:
            theirs.close()
        return cls(pid, ours)

    def fork(self, batch: Any, cpus: int) -> tuple[ZygoteChild, int] | None:
        """A one-instance process for ``batch``: ``(process, the read end of its pipe)``;
        None when the supervisor should fork this one itself (a batch too large for one
        message: its inputs; or the zygote could not fork)."""
        request = pickle.dumps((batch, cpus), pickle.HIGHEST_PROTOCOL)
        if len(request) > MAX_REQUEST:
            return None
        inbox, out = os.pipe()
        try:
            try:
                socket.send_fds(self.sock, [request], [out])
                reply, fds, _, _ = socket.recv_fds(self.sock, 64, 1)
            except OSError as exc:
                raise ZygoteGone(str(exc)) from None
            finally:
                os.close(out)  # the child's now (and the zygote's, which closes it)
            if not reply:
                raise ZygoteGone("the zygote exited")
            if not fds:
                os.close(inbox)
                return None
            return ZygoteChild(self, int(reply), fds[0]), inbox
        except BaseException:
            os.close(inbox)
            raise

    def reap(self, pid: int) -> int | None:
        """The exit code of the zygote's child ``pid``, which has exited (None: unknown)."""
        try:
            self.sock.send(b"%d" % pid)
            reply = self.sock.recv(64)
        except OSError:
            return None
        return int(reply) if reply and reply != b"?" else None

    def stop(self, *, kill: bool = False) -> None:
        """End the zygote (it exits at the end of its socket) and reap it."""
        if kill:
            with contextlib.suppress(OSError):
                os.kill(self.pid, SIGKILL)
        with contextlib.suppress(OSError):  # the end for the zygote, whoever else holds this end
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)


class ZygoteChild(ForkedProcess):
    """A one-instance process the zygote forked: its sentinel is a pidfd; ``join`` asks
    the zygote to reap it."""

    __slots__ = ("zygote",)

    def __init__(self, zygote: Zygote, pid: int, sentinel: int) -> None:
        super().__init__(pid, sentinel)
        self.zygote = zygote

    def join(self, timeout: float | None = None) -> None:
        if self.exitcode is not None:
            return
        import select

        if not select.select([self.sentinel], [], [], None if timeout is None else max(0.0, timeout))[0]:
            return
        self.exitcode = self.zygote.reap(self.pid)


def _serve(sock: socket.socket, setup: Any, token: str, spill: str) -> None:  # pragma: no cover
    """The zygote's loop: fork on a request with a pipe, reap on a request without."""
    os.setpgid(0, 0)  # out of the terminal's signals: a Ctrl-C is the supervisor's to handle
    die_with_parent()
    # the run's mark (not a reaper of orphans: it reaps only what the supervisor asks),
    # which its children replace with their own
    os.environ[ENV_TOKEN] = f"{token}.{os.getpid()}"
    fileno = sock.fileno()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 1)
        except OSError:
            return
        if not msg:  # the supervisor closed its end (or died)
            return
        if not fds:  # reap
            pid = int(msg)
            try:
                _, status = os.waitpid(pid, 0)
                reply = b"%d" % os.waitstatus_to_exitcode(status)
            except (ChildProcessError, ValueError):
                reply = b"?"
            sock.send(reply)
            continue
        out = fds[0]
        pidfd = -1
        pid = 0
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    batch, cpus = pickle.loads(msg)
                except BaseException:
                    os._exit(1)  # recorded as a crash of the instance's process
                _forked_child(out, (fileno, -1), setup, batch, token, spill, cpus)
            pidfd = os.pidfd_open(pid)
        except OSError:
            if pid > 0:  # no way to watch it: it does not run unsupervised
                with contextlib.suppress(OSError):
                    os.kill(pid, SIGKILL)
                    os.waitpid(pid, 0)
            sock.send(b"0")  # no fd: the supervisor forks this one itself
        else:
            socket.send_fds(sock, [b"%d" % pid], [pidfd])
        finally:
            os.close(out)
            if pidfd >= 0:
                os.close(pidfd)
