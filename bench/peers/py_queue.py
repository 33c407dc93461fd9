"""py_queue.py: the CPython peer of bench/queue.mjs; measures multiprocessing.Queue and SimpleQueue
the way bench/queue.mjs measures ours and prints one JSON object on stdout.

    python3 py_queue.py '{"oneway": {"int": 100000, "b64": 100000, "b64k": 5000}, "rtt_n": 5000}'

One way: the parent put()s warm items, waits for the child to have them, then put()s n more and
waits until the child has got them all (an Event); items/s over that time. Round trip: the parent
put()s into q1, the child get()s and put()s into q2, the parent get()s; every trip timed with
perf_counter_ns. Start method 'fork'.
"""
import json
import sys
import time
import multiprocessing as mp

OBJ = {"id": 1, "op": "get", "args": [1, 2, 3]}
PAYLOADS = {"int": 1, "obj": OBJ, "b64": b"x" * 64, "b64k": b"x" * 65536}


def die_with_parent():
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def sink(q, warm, n, warmed, done):
    die_with_parent()
    for _ in range(warm):
        q.get()
    warmed.set()
    for _ in range(n):
        q.get()
    done.set()


def oneway(cls, payload, n):
    q = cls()
    warm = max(1, n // 10)
    warmed, done = mp.Event(), mp.Event()
    p = mp.Process(target=sink, args=(q, warm, n, warmed, done))
    p.start()
    for _ in range(warm):
        q.put(payload)
    warmed.wait()
    t = time.perf_counter_ns()
    for _ in range(n):
        q.put(payload)
    done.wait()
    dt = time.perf_counter_ns() - t
    p.join()
    return dt


def echo(a, b, total):
    die_with_parent()
    for _ in range(total):
        b.put(a.get())


def rtt(cls, payload, n, warm):
    a, b = cls(), cls()
    p = mp.Process(target=echo, args=(a, b, n + warm))
    p.start()
    clock = time.perf_counter_ns
    out = []
    for i in range(n + warm):
        t = clock()
        a.put(payload)
        b.get()
        if i >= warm:
            out.append(clock() - t)
    p.join()
    return out


def main():
    die_with_parent()
    cfg = json.loads(sys.argv[1])
    mp.set_start_method("fork")
    out = {"python": sys.version.split()[0], "oneway": {}, "rtt": {}}
    for name, cls in (("Queue", mp.Queue), ("SimpleQueue", mp.SimpleQueue)):
        for payload, n in cfg.get("oneway", {}).items():
            out["oneway"][f"{name}-{payload}"] = {"n": n, "ns": oneway(cls, PAYLOADS[payload], n)}
        if cfg.get("rtt_n"):
            out["rtt"][name] = rtt(cls, PAYLOADS["int"], cfg["rtt_n"], cfg.get("rtt_warm", 500))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
