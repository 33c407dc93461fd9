"""py_process.py: the CPython multiprocessing.Process peer of bench/process.mjs; measures itself
the way bench/process.mjs measures ours and prints one JSON object on stdout.

    python3 py_process.py '{"warm": 2, "n": {"fork": 20, "spawn": 8, "forkserver": 20}}'

Per start method, `warm` untimed starts (the forkserver method starts its server in the first),
then n timed ones, one after another: a duplex Pipe() (a socketpair, as ours), Process(target,
args=(child_end,)); t0 just before p.start(); the target sends time.perf_counter_ns()
(CLOCK_MONOTONIC, the parent's clock) first thing and returns. Per start, ns since t0: start()
returned ("call"), the target entered ("entry"), the parent has the message ("running"), join()
returned ("join").
"""
import json
import sys
import time
import multiprocessing as mp


def die_with_parent():
    """If the bench (our parent) is killed, go too (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def target(conn):
    conn.send(time.perf_counter_ns())


def measure(method, n, warm):
    ctx = mp.get_context(method)
    clock = time.perf_counter_ns
    out = {"call": [], "entry": [], "running": [], "join": []}
    for i in range(warm + n):
        a, b = ctx.Pipe()
        p = ctx.Process(target=target, args=(b,))
        t0 = clock()
        p.start()
        t1 = clock()
        b.close()
        entry = a.recv()
        t2 = clock()
        p.join()
        t3 = clock()
        a.close()
        if p.exitcode != 0:
            raise RuntimeError(f"{method}: the child exited with {p.exitcode}")
        if i >= warm:
            out["call"].append(t1 - t0)
            out["entry"].append(entry - t0)
            out["running"].append(t2 - t0)
            out["join"].append(t3 - t0)
    return out


def main():
    cfg = json.loads(sys.argv[1])
    die_with_parent()
    out = {"python": sys.version.split()[0], "methods": {}}
    for method, n in cfg["n"].items():
        out["methods"][method] = measure(method, n, cfg.get("warm", 2))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
