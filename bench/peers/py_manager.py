"""py_manager.py: the CPython peer of bench/manager.mjs; measures itself the way bench/manager.mjs
measures ours and prints one JSON object on stdout.

    python3 py_manager.py '{"n": 5000, "warm": 500, "budget_s": 2.5, "conn_n": 5000, "start_n": 3}'

dict: Manager().dict(), then n x (d[i] = i; d[i]) after `warm` of the same, every op timed with
perf_counter_ns. conn: a Listener on 127.0.0.1 (TCP), a child Process connects with Client and echoes
send_bytes/recv_bytes; the parent times send_bytes(64 B) + recv_bytes. start: Manager() start and
shutdown, start_n times. Start method: the platform default (fork on Linux).
"""
import ctypes
import json
import signal
import sys
import time
import multiprocessing as mp
from multiprocessing.connection import Client, Listener


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def pct(sorted_ns, p):
    n = len(sorted_ns)
    return sorted_ns[min(n - 1, max(0, -(-p * n // 100) - 1))]


def summary(samples, elapsed_ns):
    s = sorted(samples)
    return {"n": len(s), "p50_ns": pct(s, 50), "p99_ns": pct(s, 99), "per_s": len(s) / (elapsed_ns / 1e9)}


def dict_ops(n, warm, budget_s):
    clock = time.perf_counter_ns
    with mp.Manager() as m:
        d = m.dict()
        for i in range(warm):
            d[i] = i
            d[i]
        samples = []
        deadline = clock() + int(budget_s * 1e9)
        start = clock()
        for i in range(n):
            t0 = clock()
            d[i] = i
            t1 = clock()
            assert d[i] == i
            t2 = clock()
            samples.append(t1 - t0)
            samples.append(t2 - t1)
            if t2 > deadline:
                break
        return summary(samples, clock() - start)


def echo(address):
    die_with_parent()
    c = Client(address)
    try:
        while True:
            c.send_bytes(c.recv_bytes())
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass


def conn_rtt(n, warm, budget_s):
    clock = time.perf_counter_ns
    payload = b"x" * 64
    with Listener(("127.0.0.1", 0)) as listener:
        p = mp.Process(target=echo, args=(listener.address,), daemon=True)
        p.start()
        c = listener.accept()
    for _ in range(warm):
        c.send_bytes(payload)
        c.recv_bytes()
    samples = []
    deadline = clock() + int(budget_s * 1e9)
    start = clock()
    for _ in range(n):
        t0 = clock()
        c.send_bytes(payload)
        c.recv_bytes()
        t1 = clock()
        samples.append(t1 - t0)
        if t1 > deadline:
            break
    elapsed = clock() - start
    c.close()
    p.join()
    return summary(samples, elapsed)


def manager_start(k):
    clock = time.perf_counter_ns
    starts, stops = [], []
    for _ in range(k):
        t0 = clock()
        m = mp.Manager()
        d = m.dict()
        d[1] = 1
        t1 = clock()
        m.shutdown()
        t2 = clock()
        starts.append(t1 - t0)
        stops.append(t2 - t1)
    return {"start_ns": sorted(starts)[len(starts) // 2], "shutdown_ns": sorted(stops)[len(stops) // 2]}


def main():
    die_with_parent()
    cfg = json.loads(sys.argv[1])
    out = {"python": sys.version.split()[0]}
    if cfg.get("n"):
        out["dict"] = dict_ops(cfg["n"], cfg.get("warm", 500), cfg.get("budget_s", 2.5))
    if cfg.get("conn_n"):
        out["conn"] = conn_rtt(cfg["conn_n"], cfg.get("warm", 500), cfg.get("budget_s", 2.5))
    if cfg.get("start_n"):
        out["start"] = manager_start(cfg["start_n"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
