"""Reaching a cluster: the scheduler's address, a bounded handshake, a LocalCluster.

``distributed.Client`` is a poor judge of an address. Against a server that is not a
Dask scheduler it waits forever for a handshake (an HTTP server) or reads the reply as
a frame length and raises ``MemoryError``; a ``tls://`` address without certificates is
a ``TypeError``; and a client that failed half-way complains from its ``__del__`` for
seconds after the error was printed. So the executor first shakes hands itself, with
Dask's own ``connect`` under a deadline and in an event loop of its own, and creates a
``Client`` only for an address that answered like a scheduler. Every failure is one
:class:`~toolkit.errors.RunError` line (exit 2).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import threading
import time
from typing import Any

from toolkit.errors import RunError
from toolkit_dask.options import DaskOptions

#: what a LocalCluster's workers serve over HTTP when they are threads of this process
#: (``:0`` alone, Dask's default, listens on every interface)
WORKER_HTTP = "127.0.0.1:0"
#: seconds a scheduler has to answer the handshake, once the connection is made
HANDSHAKE = 2.0
#: Dask's periodic work, relaxed for a LocalCluster. Its workers only wait for runner
#: processes: the profiler would sample that wait every 10 ms in every worker, and the
#: event-loop tick, memory and system monitors wake each server 10-50 times a second.
#: Together 0.05 CPU-seconds per second idle on a 2-core machine, 0.007 without them.
QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "1s",
}


def scheduler_address(options: DaskOptions) -> str:
    """The address to connect to: ``address``, or the one in ``scheduler_file`` (which a
    scheduler that is still starting may not have written yet: wait up to the timeout)."""
    if options.address:
        return options.address
    path = str(options.scheduler_file)
    deadline = time.monotonic() + options.timeout
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                return str(json.load(f)["address"])
        except FileNotFoundError:
            problem = "does not exist"
        except (ValueError, KeyError, TypeError):  # being written, or not a scheduler file
            problem = "has no scheduler address (a file written by `dask scheduler --scheduler-file`)"
        except OSError as exc:
            raise RunError(f"cannot read the Dask scheduler file {path}: {exc.strerror or exc}") from None
        if time.monotonic() >= deadline:
            raise RunError(f"the Dask scheduler file {path} {problem} (waited {options.timeout:g}s)")
        time.sleep(0.05)


def _why(exc: BaseException) -> str:
    """The user's version of what went wrong in a handshake."""
    text = str(exc).strip()
    if isinstance(exc, ValueError) and "scheme" in text:
        return text  # "unknown address scheme 'foo' (known schemes: [...])"
    if isinstance(exc, TypeError) and "ssl" in text.lower():
        return (
            "tls:// needs certificates: set distributed.comm.tls.client.cert, .key"
            " and distributed.comm.tls.ca-file in Dask's configuration"
        )
    if isinstance(exc, OSError) and "Timed out trying to connect" in text:
        # the last attempt's error, which Dask wraps in text: "in <TCPConnector ...>:
        # ConnectionRefusedError: [Errno 111] Connection refused"
        last = str(exc.__cause__ or "")
        found = re.search(r"\[Errno -?\d+\] (.+)$", last) or re.search(r"(\w+Error.*)$", last)
        return f"nothing answered ({found.group(1).strip()})" if found else "nothing answered"
    if isinstance(exc, OSError | EOFError) or type(exc).__name__ == "CommClosedError":
        return "it closed the connection: not a Dask scheduler?"
    return f"it does not speak Dask's protocol ({type(exc).__name__})"


def probe(address: str, timeout: float) -> None:
    """Connect to ``address`` and exchange Dask's handshake within ``timeout`` seconds,
    or raise a one-line :class:`RunError` saying why not."""
    from distributed.comm import connect
    from distributed.security import Security

    async def shake() -> None:
        args = Security().get_connection_args("client")
        # Dask bounds the TCP connection by ``timeout`` (and says why it failed), but
        # not the handshake after it
        comm = await asyncio.wait_for(connect(address, timeout=timeout, **args), timeout + HANDSHAKE)
        await comm.close()

    try:
        asyncio.run(shake())
    except TimeoutError:
        why = f"it accepted the connection but sent no Dask handshake in {timeout + HANDSHAKE:g}s: not a Dask scheduler?"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # MemoryError included: a reply read as a frame length
        why = _why(exc)
    else:
        return
    raise RunError(f"cannot connect to the Dask scheduler at {address}: {why}")


def connect_client(options: DaskOptions) -> Any:
    """A ``Client`` of the scheduler ``options`` name, with at least one worker."""
    from distributed import Client

    address = scheduler_address(options)
    probe(address, options.timeout)
    where = options.describe()
    try:
        client = Client(address, timeout=options.timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RunError(f"cannot connect to the Dask scheduler at {where}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=options.timeout)
    except TimeoutError:
        client.close(timeout=5)
        raise RunError(f"the Dask cluster at {where} has no workers (waited {options.timeout:g}s)") from None
    return client


def start_local_cluster(options: DaskOptions, workers: int) -> tuple[Any, Any]:
    """A ``LocalCluster`` of ``workers`` workers and its client, every socket on 127.0.0.1
    unless the table names another address."""
    import dask
    from distributed import Client, LocalCluster

    kwargs = dict(options.local)
    if kwargs.get("dashboard_address") is None:
        # no dashboard, but the scheduler still serves HTTP (health, metrics): on port
        # 8787 of every interface unless told where
        kwargs["scheduler_kwargs"] = {"dashboard": False, "dashboard_address": WORKER_HTTP}
    if kwargs.get("processes"):
        kwargs["host"] = "127.0.0.1"  # the scheduler, nannies and workers listen there
    else:  # workers talk in-process (inproc://), but each still serves HTTP
        kwargs["worker_dashboard_address"] = WORKER_HTTP
    # the workers must not die of the Ctrl-C that the toolkit handles gracefully: a
    # signal ignored at spawn stays ignored in the new interpreter
    main = threading.current_thread() is threading.main_thread()
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with dask.config.set(QUIET):
            cluster = LocalCluster(
                n_workers=max(1, workers),
                silence_logs=logging.CRITICAL,  # its scheduler and nannies log into our stderr
                **kwargs,
            )
            try:
                client = Client(cluster, set_as_default=False)
            except BaseException:
                cluster.close(timeout=10)
                raise
    except (OSError, RuntimeError, ValueError, TimeoutError) as exc:
        raise RunError(f"could not start a Dask LocalCluster: {exc}") from None
    finally:
        if main:
            signal.signal(signal.SIGINT, saved)
    return cluster, client


def dashboard_url(cluster: Any, client: Any) -> str | None:
    """Where the dashboard of this cluster is, if it has one. A LocalCluster's is read
    from its server: ``Client.dashboard_link`` would name the host of the scheduler's
    in-process (``inproc://``) address, not the one the dashboard listens on."""
    if cluster is None:
        try:
            return (
                str(client.dashboard_link)
                if client.scheduler_info().get("services", {}).get("dashboard")
                else None
            )
        except Exception:  # a scheduler without the service, or gone
            return None
    server = getattr(cluster.scheduler, "services", {}).get("dashboard")
    if server is None:
        return None
    host = str(server.address)
    return f"http://{f'[{host}]' if ':' in host else host}:{server.port}/status"
