// The wire between a Pool and one of its workers: two shared-memory rings (lib/queue-ring.ts),
// tasks one way and results the other, beside the worker's Connection.
//
// Why rings and not the Connection: a message over a socket costs a send and a receive in the
// kernel on every leg, and a socket's wake-up is a "sync" one, which makes the kernel run the
// woken worker on the pool's CPU while the other CPU idles. A ring put or get is a few stores and
// loads; a waiting side spins on a word and parks on a futex only when the spin runs out. Messages
// are the codec's, handles included (their fds take the ring's side channel), and messages larger
// than half a ring spill into a memfd of their own (see queue-ring.ts).
//
// The Connection carries the first message (the InitMessage, which brings the rings to a worker
// process), and its EOF tells a worker that its pool is gone. The end of each stream is a null
// message: the pool puts one in the task ring to stop the worker after the tasks before it, and
// one in the result ring, itself, once the worker has ended, so that the reader takes every result
// the worker committed before it ended and then learns of the end.
import { Connection } from './connection.js';
import { EOFError } from './errors.js';
import { Ring } from './queue-ring.js';
import { SimpleQueue, ringOf } from './queues.js';
import { NOTHING, RingDuplex, peerGone, ringQueues, socketEnded } from './ring-duplex.js';

/** How often a waiting worker looks whether its pool is gone (its Connection at EOF). */
const CHECK_MS = 100;
const LABEL = 'Pool';

/** How a worker finds its rings in the InitMessage: queue objects (another process) or fd numbers (a thread of this one). */
export type RingsWire = { tasks: SimpleQueue; results: SimpleQueue } | { shared: [number, number, number, number, number, number] };

/** The pool's end: puts tasks, gets results. */
export class PoolLink {
  readonly #queues: [SimpleQueue, SimpleQueue];
  readonly #wire: RingDuplex;
  #closed = false;
  #ended = false;

  /** `sameProcess`: the worker is a thread of this process, which borrows our fds. */
  constructor(readonly conn: Connection, readonly sameProcess: boolean, spinMs: number) {
    this.#queues = ringQueues(spinMs);
    this.#wire = new RingDuplex(ringOf(this.#queues[0]), ringOf(this.#queues[1]), LABEL);
  }

  /** Sends the first message, with what the worker needs to reach the rings. */
  start(init: object): void {
    const [tasks, results] = this.#queues;
    let wire: RingsWire;
    if (this.sameProcess) {
      const a = this.#wire.tx.fds, b = this.#wire.rx.fds;
      wire = { shared: [a.seg, a.tx, a.rx, b.seg, b.tx, b.rx] };
    } else {
      wire = { tasks, results };
    }
    this.conn.send({ ...init, rings: wire });
  }

  get closed(): boolean {
    return this.#closed;
  }

  setSpin(ms: number): void {
    this.#wire.rx.setSpin(ms);
  }

  /** Puts a message for the worker; one that does not fit now waits its turn (in order) on the loop. */
  send(msg: unknown): void {
    if (this.#closed) throw peerGone(`${LABEL}: sending to a worker`);
    this.#wire.send(msg);
  }

  /** The worker's next message; rejects with EOFError once it has ended and every message before that was taken. */
  async recv(): Promise<unknown> {
    const wire = this.#wire;
    for (;;) {
      const v = wire.tryRecv();
      if (v === null) throw new EOFError(`${LABEL}: the worker ended`);
      if (v !== NOTHING) return v;
      if ((await wire.waitData(-1)) === 3) throw new EOFError(`${LABEL}: the connection to the worker was closed`);
    }
  }

  /** The worker has ended: its reader gets what it sent, then EOFError. */
  ended(): void {
    const ring = this.#wire.rx;
    if (this.#ended || ring.closed) return;
    this.#ended = true;
    // We are a producer of the result ring too, for this one message; the worker's put lock is
    // robust, so one it died holding is taken over.
    const m = ring.prepare(null, LABEL);
    if (ring.tryPutNow(m)) return;
    ring.put(Ring.keep(m), -1, () => peerGone(LABEL)).catch(() => {});
  }

  /** Tells the worker to stop once it has run the tasks sent so far. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#wire.send(null);
    } catch {
      // the ring is closed: the worker is gone already
    }
  }

  /** Frees our hold on the rings and the Connection (the worker has ended). */
  release(): void {
    this.#closed = true;
    this.#wire.abandon();
    this.conn.close();
    for (const q of this.#queues) q.close();
  }
}

/** The worker's end: gets tasks, puts results. */
export class WorkerLink {
  readonly #wire: RingDuplex;
  readonly #own: SimpleQueue[];
  #closed = false;
  readonly #gone = (): boolean => socketEnded(this.conn);

  constructor(readonly conn: Connection, wire: RingsWire, spinMs: number) {
    let tasks: Ring, results: Ring;
    if ('shared' in wire) {
      const [a, b, c, d, e, f] = wire.shared;
      tasks = Ring.adopt(a, b, c, spinMs, false);
      results = Ring.adopt(d, e, f, spinMs, false);
      this.#own = [];
    } else {
      tasks = ringOf(wire.tasks);
      results = ringOf(wire.results);
      tasks.setSpin(spinMs);
      this.#own = [wire.tasks, wire.results];
    }
    // A worker owns its process: its wait for tasks always spins the full spinMs before it parks.
    // With the ring's adaptive spin (halved after each wait longer than the spin), a worker whose
    // pool had been slow for a while (unoptimized code at first, a wake-up onto its CPU) settled
    // into parking on every task, and each park's wake-up could put it on the pool's CPU again:
    // of 21 rounds of 2,000 applies after warm-up, 7 had a p50 of 33–44 µs; with a fixed spin,
    // none (all 6.4–10 µs).
    tasks.adaptive = false;
    this.#wire = new RingDuplex(results, tasks, LABEL);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The next batch of tasks, waiting for it; EOFError once the pool says stop or is gone. */
  recvSync(): unknown {
    if (!this.#closed) {
      const v = this.#wire.recvSync(CHECK_MS, this.#gone);
      if (v !== null && v !== NOTHING) return v;
    }
    this.close();
    throw new EOFError(`${LABEL} worker: the pool closed the connection`);
  }

  /** Whether a batch is already waiting. */
  pending(): boolean {
    return !this.#closed && !this.#wire.rx.empty();
  }

  /**
   * Puts a message for the pool, waiting for room; throws EPIPE once the pool is gone, or, with
   * `maxMs`, when it stays full that long (then the message is dropped).
   */
  send(msg: unknown, maxMs = -1): void {
    if (this.#closed) throw peerGone(`${LABEL} worker`);
    this.#wire.sendSync(msg, CHECK_MS, this.#gone, maxMs);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#own) q.close();
  }
}
