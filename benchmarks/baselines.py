"""The raw baselines, adapted from ``shared/baselines/bench_*.py``: one per run, each in
a fresh interpreter (``python benchmarks/baselines.py METHOD [options]``), printing one
JSON object: ``import_s`` (importing the library), ``startup_s`` (creating and warming
its workers), ``run_s`` (the measured work, results collected), plus method-specific
fields. The harness also times the whole process from outside (``e2e``).

Kept thin at the top: under spawn and forkserver, children re-import this module.
"""

import json
import os
import time

WORKERS = 2
T_START = time.perf_counter()


def square(x):
    return x * x


def noop():
    pass


def burn(loops):
    t0 = time.perf_counter()
    acc = 0
    for k in range(loops):
        acc = (acc + k * k) % 1_000_003
    return acc, time.perf_counter() - t0


def sum_of_squares(n):
    return (n - 1) * n * (2 * n - 1) // 6


def status_mib(field, pid="self"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- case 1: tiny tasks ------------------------------------------------------------


def tiny(method, n, start_method):
    t0 = time.perf_counter()
    if method == "serial":
        t1 = time.perf_counter()
        out = [square(x) for x in range(n)]
        t2 = time.perf_counter()
        return dict(import_s=0.0, startup_s=t1 - t0, run_s=t2 - t1, check=sum(out) == sum_of_squares(n))
    if method == "imap":
        import multiprocessing as mp

        ctx = mp.get_context(start_method)
        t1 = time.perf_counter()
        with ctx.Pool(WORKERS) as pool:
            list(pool.imap_unordered(square, range(64), chunksize=1))
            t2 = time.perf_counter()
            out = list(pool.imap_unordered(square, range(n), chunksize=1024))
            t3 = time.perf_counter()
    elif method == "ppe":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context(start_method)
        t1 = time.perf_counter()
        with ProcessPoolExecutor(WORKERS, mp_context=ctx) as ex:
            list(ex.map(square, range(64)))
            t2 = time.perf_counter()
            out = list(ex.map(square, range(n), chunksize=1024))
            t3 = time.perf_counter()
    elif method == "joblib":
        from joblib import Parallel, delayed

        t1 = time.perf_counter()
        par = Parallel(n_jobs=WORKERS, batch_size="auto")
        with par:
            par(delayed(square)(x) for x in range(64))
            t2 = time.perf_counter()
            out = par(delayed(square)(x) for x in range(n))
            t3 = time.perf_counter()
    elif method == "mpire":
        from mpire import WorkerPool

        t1 = time.perf_counter()
        with WorkerPool(n_jobs=WORKERS, start_method=start_method, keep_alive=True) as pool:
            pool.map(square, range(64))
            t2 = time.perf_counter()
            out = pool.map(square, range(n))
            t3 = time.perf_counter()
    else:
        raise SystemExit(f"unknown tiny method {method!r}")
    return dict(
        import_s=t1 - t0,
        startup_s=t2 - t1,
        run_s=t3 - t2,
        check=len(out) == n and sum(out) == sum_of_squares(n),
    )


# -- case 2: one process per task ------------------------------------------------------


def processes(start_method, n, concurrency=WORKERS):
    """n no-op processes, `concurrency` in flight (a sliding window on the sentinels)."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context(start_method)
    t0 = time.perf_counter()
    if start_method == "forkserver":  # start the server outside the timing, reported apart
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    boot = time.perf_counter() - t0
    running = {}
    started = 0
    t1 = time.perf_counter()
    while started < n or running:
        while started < n and len(running) < concurrency:
            p = ctx.Process(target=noop)
            p.start()
            running[p.sentinel] = p
            started += 1
        for s in wait(list(running)):
            p = running.pop(s)
            p.join()
            assert p.exitcode == 0
    run = time.perf_counter() - t1
    return dict(import_s=0.0, startup_s=boot, run_s=run, check=True)


# -- case 3: CPU-bound -------------------------------------------------------------------


def cpu_pool(loops, n, start_method):
    import multiprocessing as mp

    ctx = mp.get_context(start_method)
    t1 = time.perf_counter()
    with ctx.Pool(WORKERS) as pool:
        out = list(pool.imap_unordered(burn, [loops] * n, chunksize=1))
    run = time.perf_counter() - t1
    return dict(
        import_s=0.0,
        startup_s=0.0,
        run_s=run,
        task_s=sum(s for _, s in out),
        check=len(out) == n and len({c for c, _ in out}) == 1,
    )


# -- case 4: result transport -------------------------------------------------------------

BATCH = 256


def make_item(i):
    return {"task": f"sweep-{i}", "value": i * 1.2345, "ok": True}


def _producer(q, start, count, batch):
    buf = []
    for i in range(start, start + count):
        buf.append(make_item(i))
        if len(buf) == batch:
            q.put(buf)
            buf = []
    if buf:
        q.put(buf)
    q.put(None)


def transport(kind, n, out_dir, start_method):
    """2 workers send n small dicts, 256 per put; the parent writes one JSON line each."""
    import multiprocessing as mp

    ctx = mp.get_context(start_method)
    t1 = time.perf_counter()
    mgr = None
    if kind == "manager":
        mgr = ctx.Manager()
        q = mgr.Queue()
    else:
        q = ctx.SimpleQueue()
    t2 = time.perf_counter()
    base = status_mib("VmRSS")
    per = n // WORKERS
    procs = [ctx.Process(target=_producer, args=(q, w * per, per, BATCH)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    dumps = json.dumps
    done = got = 0
    path = os.path.join(out_dir, "results.jsonl")
    with open(path, "w") as f:
        while done < WORKERS:
            item = q.get()
            if item is None:
                done += 1
            else:
                f.write("".join([dumps(x) + "\n" for x in item]))
                got += len(item)
    for p in procs:
        p.join()
    t3 = time.perf_counter()
    if mgr is not None:
        mgr.shutdown()
    os.unlink(path)
    return dict(
        import_s=0.0,
        startup_s=t2 - t1,
        run_s=t3 - t2,
        growth_mib=status_mib("VmHWM") - base,
        check=got == per * WORKERS,
    )


# -- case 11: many tasks in needs chains -----------------------------------------------


def chains(n, chain, start_method):
    """n no-op tasks in chains of `chain`: each submitted once the one it needs returned."""
    import multiprocessing as mp
    import threading

    ctx = mp.get_context(start_method)
    done = []
    finished = threading.Event()
    t1 = time.perf_counter()
    with ctx.Pool(WORKERS) as pool:

        def submit(i):
            pool.apply_async(noop, callback=lambda _r: landed(i))

        def landed(i):
            done.append(i)
            if (i + 1) % chain and i + 1 < n:
                submit(i + 1)
            if len(done) == n:
                finished.set()

        for first in range(0, n, chain):
            submit(first)
        finished.wait()
    run = time.perf_counter() - t1
    return dict(import_s=0.0, startup_s=0.0, run_s=run, check=sorted(done) == list(range(n)))


# -- case 8: dask, a fresh script against a running cluster --------------------------


def dask_map(address, loops, n):
    """What a user's own script does: import, connect, map + gather, disconnect."""
    t0 = time.perf_counter()
    from distributed import Client

    t1 = time.perf_counter()
    client = Client(address, set_as_default=False)
    t2 = time.perf_counter()
    if loops:
        got = client.gather(client.map(burn, [loops] * n, pure=False))
        check = len(got) == n
    else:
        got = client.gather(client.map(square, range(n), pure=False))
        check = sum(got) == sum_of_squares(n)
    t3 = time.perf_counter()
    client.close()
    return dict(import_s=t1 - t0, startup_s=t2 - t1, run_s=t3 - t2, check=check)


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["tiny", "processes", "cpu", "transport", "dask", "chains"])
    ap.add_argument("method", nargs="?", default="")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--loops", type=int, default=0)
    ap.add_argument("--chain", type=int, default=10)
    ap.add_argument("--start-method", default="fork")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--address", default="")
    args = ap.parse_args()
    if args.case == "tiny":
        res = tiny(args.method, args.n, args.start_method)
    elif args.case == "processes":
        res = processes(args.start_method, args.n)
    elif args.case == "dask":
        res = dask_map(args.address, args.loops, args.n)
    elif args.case == "chains":
        res = chains(args.n, args.chain, args.start_method)
    elif args.case == "cpu":
        res = cpu_pool(args.loops, args.n, args.start_method)
    else:
        res = transport(args.method, args.n, args.out_dir, args.start_method)
    res["since_start_s"] = time.perf_counter() - T_START
    res["maxrss_mib"] = status_mib("VmHWM")
    print(json.dumps(res), flush=True)
    if args.start_method == "forkserver":
        from multiprocessing import forkserver

        getattr(forkserver._forkserver, "_stop", lambda: None)()


if __name__ == "__main__":
    main()
