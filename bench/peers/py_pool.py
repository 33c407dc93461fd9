"""py_pool.py: the CPython multiprocessing.Pool peer of bench/pool.mjs; measures itself the way
bench/pool.mjs measures ours and prints one JSON object on stdout.

    python3 py_pool.py '{"workers": 2, "map_n": 100000, "auto_reps": 10, "apply_n": 2000, "apply_warm": 200}'

Pool(workers) (the default start method, fork on Linux), task x*x. Warm-up: map over 1000 items
and apply_warm applies. Then: apply_n sequential pool.apply(), each timed (perf_counter_ns); one
pool.map over map_n items with chunksize=1; auto_reps pool.map calls over map_n items with the
default chunksize, timed together.
"""
import ctypes
import json
import signal
import sys
import time
import multiprocessing as mp


def die_with_parent():
    """If the bench (our parent) is killed, go too (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def _sq(x):
    return x * x


def main():
    cfg = json.loads(sys.argv[1])
    die_with_parent()
    n = cfg["map_n"]
    clock = time.perf_counter_ns
    out = {"python": sys.version.split()[0]}
    with mp.Pool(cfg["workers"]) as pool:
        pool.map(_sq, range(1000))
        for i in range(cfg["apply_warm"]):
            pool.apply(_sq, (i,))
        samples = []
        t0 = clock()
        for i in range(cfg["apply_n"]):
            t = clock()
            pool.apply(_sq, (i,))
            samples.append(clock() - t)
        out["apply"] = {"samples": samples, "total_ns": clock() - t0}
        t = clock()
        r = pool.map(_sq, range(n), chunksize=1)
        out["cs1"] = {"items": n, "ns": clock() - t}
        assert r[-1] == (n - 1) ** 2
        t = clock()
        for _ in range(cfg["auto_reps"]):
            r = pool.map(_sq, range(n))
        out["auto"] = {"items": n * cfg["auto_reps"], "ns": clock() - t}
        assert r[-1] == (n - 1) ** 2
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
