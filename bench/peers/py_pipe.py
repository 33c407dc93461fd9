"""py_pipe.py: the CPython multiprocessing.Pipe peer of bench/pipe.mjs; measures itself the way
bench/pipe.mjs measures ours and prints one JSON object on stdout.

    python3 py_pipe.py '{"rtt_n": 20000, "rtt_warm": 2000, "budget_s": 2.5, "tput": {"obj": 100000, ...}}'

Start method 'fork'; duplex Pipe() (a socketpair, as ours). Round trip: parent sends, child
echoes, every iteration timed with perf_counter_ns. One-way: the child sends warm + n items after
a "go"; the parent times the n after the warm-up ones.
"""
import ctypes
import json
import signal
import sys
import time
import multiprocessing as mp

OBJ = {"id": 1, "op": "get", "args": [1, 2, 3]}
PAYLOADS = {"obj": OBJ, "b64": b"x" * 64, "b64k": b"x" * 65536}


def die_with_parent():
    """If the bench (our parent) is killed, go too (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def echo(conn, as_bytes):
    die_with_parent()
    try:
        if as_bytes:
            while (x := conn.recv_bytes()) != b"":
                conn.send_bytes(x)
        else:
            while (x := conn.recv()) is not None:
                conn.send(x)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def sender(conn, name, total):
    die_with_parent()
    payload = PAYLOADS[name]
    try:
        conn.recv()  # go
        if name == "obj":
            for _ in range(total):
                conn.send(payload)
        else:
            for _ in range(total):
                conn.send_bytes(payload)
        conn.recv()  # the parent says when it has counted all
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def pct(sorted_ns, p):
    n = len(sorted_ns)
    return sorted_ns[min(n - 1, max(0, -(-p * n // 100) - 1))]


def rtt(ctx, name, n, warm, budget_s):
    a, b = ctx.Pipe()
    as_bytes = name != "obj"
    p = ctx.Process(target=echo, args=(b, as_bytes), daemon=True)
    p.start()
    b.close()
    payload = PAYLOADS[name]
    send, recv = (a.send_bytes, a.recv_bytes) if as_bytes else (a.send, a.recv)
    clock = time.perf_counter_ns
    for _ in range(warm):
        send(payload); recv()
    samples = [0] * n
    deadline = clock() + int(budget_s * 1e9)
    done = 0
    t_start = clock()
    for i in range(n):
        t0 = clock()
        send(payload); recv()
        t1 = clock()
        samples[i] = t1 - t0
        done = i + 1
        if t1 > deadline:
            break
    total = clock() - t_start
    send(b"" if as_bytes else None)
    p.join(5)
    a.close()
    s = sorted(samples[:done])
    return {"n": done, "p50_ns": pct(s, 50), "p99_ns": pct(s, 99), "per_s": done / (total / 1e9)}


def oneway(ctx, name, total, warm):
    a, b = ctx.Pipe()
    p = ctx.Process(target=sender, args=(b, name, warm + total), daemon=True)
    p.start()
    b.close()
    recv = a.recv if name == "obj" else a.recv_bytes
    a.send("go")
    for _ in range(warm):
        recv()
    t0 = time.perf_counter_ns()
    for _ in range(total):
        recv()
    dt = (time.perf_counter_ns() - t0) / 1e9
    a.send("done")
    p.join(5)
    a.close()
    size = 0 if name == "obj" else len(PAYLOADS[name])
    return {"n": total, "msg_s": total / dt, "mb_s": total * size / dt / 1e6 if size else None}


def main():
    cfg = json.loads(sys.argv[1])
    die_with_parent()
    ctx = mp.get_context("fork")
    out = {"python": sys.version.split()[0], "rtt": {}, "oneway": {}}
    for name in cfg.get("rtt_payloads", ["obj", "b64"]):
        out["rtt"][name] = rtt(ctx, name, cfg["rtt_n"], cfg["rtt_warm"], cfg["budget_s"])
    for name, total in cfg.get("tput", {}).items():
        out["oneway"][name] = oneway(ctx, name, total, max(1, total // 10))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
