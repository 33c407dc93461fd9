"""py_sync.py: the CPython peer of bench/lock.mjs; measures itself the way bench/lock.mjs measures
ours and prints one JSON object on stdout.

    python3 py_sync.py '{"lock_n": 1000000, "pp_n": 5000, "inc_n": 100000}'

lock: ns per acquire+release pair of multiprocessing.Lock (and RLock), uncontended, bound methods.
pingpong: two processes, two multiprocessing.Events: the parent sets `ping` and waits for `pong`;
the child waits for `ping`, clears it, sets `pong`; per round trip ns (time.perf_counter_ns).
inc: 2 processes x inc_n `with v.get_lock(): v.value += 1` on a Value('i'); ns per increment from
go.set() to both joined.
"""
import json
import sys
import time
import multiprocessing as mp


def die_with_parent():
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def uncontended(lock, n):
    acq, rel = lock.acquire, lock.release
    for _ in range(n // 10):
        acq(); rel()
    t = time.perf_counter_ns()
    for _ in range(n):
        acq(); rel()
    return (time.perf_counter_ns() - t) / n


def pong(ping, pong_, n):
    die_with_parent()
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong_.set()


def pingpong(n, warm):
    ping, pong_ = mp.Event(), mp.Event()
    p = mp.Process(target=pong, args=(ping, pong_, n + warm))
    p.start()
    clock = time.perf_counter_ns
    out = []
    for i in range(n + warm):
        t = clock()
        ping.set()
        pong_.wait()
        pong_.clear()
        if i >= warm:
            out.append(clock() - t)
    p.join()
    return out


def inc(v, n, go):
    die_with_parent()
    go.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_inc(n):
    v, go = mp.Value("i", 0), mp.Event()
    ps = [mp.Process(target=inc, args=(v, n, go)) for _ in range(2)]
    for p in ps:
        p.start()
    time.sleep(0.3)
    t = time.perf_counter_ns()
    go.set()
    for p in ps:
        p.join()
    dt = time.perf_counter_ns() - t
    assert v.value == 2 * n, v.value
    return dt / (2 * n)


def inc_loops(v, n, go, ready, ends, k, warm):
    die_with_parent()
    mine = mp.Value("i", 0)
    for _ in range(warm):
        with mine.get_lock():
            mine.value += 1
    ready.wait()
    go.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    ends[k] = time.perf_counter_ns()


def value_inc_loops(n, warm):
    """As value_inc, but after `warm` increments in each process on a Value of its own, and timed
    from go to the end of the later loop (no process exit): as the bench's warm rows of ours."""
    v, go, ready, ends = mp.Value("i", 0), mp.Event(), mp.Barrier(3), mp.Array("q", 2)
    ps = [mp.Process(target=inc_loops, args=(v, n, go, ready, ends, k, warm)) for k in range(2)]
    for p in ps:
        p.start()
    ready.wait()
    time.sleep(0.2)
    t = time.perf_counter_ns()
    go.set()
    for p in ps:
        p.join()
    assert v.value == 2 * n, v.value
    return (max(ends[0], ends[1]) - t) / (2 * n)


def main():
    die_with_parent()
    cfg = json.loads(sys.argv[1])
    mp.set_start_method("fork")
    out = {"python": sys.version.split()[0]}
    if cfg.get("lock_n"):
        out["lock"] = uncontended(mp.Lock(), cfg["lock_n"])
        out["rlock"] = uncontended(mp.RLock(), cfg["lock_n"])
    if cfg.get("pp_n"):
        out["pingpong"] = pingpong(cfg["pp_n"], cfg.get("warm", 200))
    if cfg.get("inc_n"):
        out["inc"] = value_inc(cfg["inc_n"])
    if cfg.get("inc_warm"):
        out["inc_loops"] = value_inc_loops(cfg["inc_n"], cfg["inc_warm"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
