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
import { Ring, RingTimeout, type Outgoing } from './queue-ring.js';
import { SimpleQueue, ringOf } from './queues.js';

/** Each ring's size: messages up to half of it go inline, larger ones spill. */
const RING_BYTES = 256 << 10;
/** How often a waiting worker looks whether its pool is gone (its Connection at EOF). */
const CHECK_MS = 100;
const LABEL = 'Pool';

function peerGone(what: string): Error {
  return Object.assign(new Error(`${what}: the other end is gone`), { code: 'EPIPE' });
}

/** How a worker finds its rings in the InitMessage: queue objects (another process) or fd numbers (a thread of this one). */
export type RingsWire = { tasks: SimpleQueue; results: SimpleQueue } | { shared: [number, number, number, number, number, number] };

/** The pool's end: puts tasks, gets results. */
export class PoolLink {
  readonly #queues: [SimpleQueue, SimpleQueue];
  readonly #tasks: Ring;
  readonly #results: Ring;
  /** Tasks that found the ring full, in order; #flush puts them as room comes. */
  readonly #outbox: Outgoing[] = [];
  #flushing = false;
  #closed = false;
  #ended = false;

  /** `sameProcess`: the worker is a thread of this process, which borrows our fds. */
  constructor(readonly conn: Connection, readonly sameProcess: boolean, spinMs: number) {
    const tasks = new SimpleQueue({ capacityBytes: RING_BYTES, spinMs });
    let results: SimpleQueue;
    try {
      results = new SimpleQueue({ capacityBytes: RING_BYTES, spinMs });
    } catch (e) {
      tasks.close();
      throw e;
    }
    this.#queues = [tasks, results];
    this.#tasks = ringOf(tasks);
    this.#results = ringOf(results);
  }

  /** Sends the first message, with what the worker needs to reach the rings. */
  start(init: object): void {
    const [tasks, results] = this.#queues;
    let wire: RingsWire;
    if (this.sameProcess) {
      const a = this.#tasks.fds, b = this.#results.fds;
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
    this.#results.setSpin(ms);
  }

  /** Puts a message for the worker; one that does not fit now waits its turn (in order) on the loop. */
  send(msg: unknown): void {
    if (this.#closed) throw peerGone(`${LABEL}: sending to a worker`);
    this.#put(msg);
  }

  #put(msg: unknown): void {
    const ring = this.#tasks;
    const m = ring.prepare(msg, LABEL); // a TypeError for what cannot travel
    if (this.#outbox.length === 0 && ring.tryPutNow(m)) return;
    this.#outbox.push(Ring.keep(m));
    if (!this.#flushing) void this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    const ring = this.#tasks;
    try {
      while (this.#outbox.length > 0) {
        await ring.put(this.#outbox[0]!, -1, () => peerGone(LABEL));
        this.#outbox.shift();
      }
    } catch {
      // The ring was closed (the worker is gone): what was not put is dropped.
      for (const m of this.#outbox.splice(0)) Ring.discard(m);
    } finally {
      this.#flushing = false;
    }
  }

  /** The worker's next message; rejects with EOFError once it has ended and every message before that was taken. */
  async recv(): Promise<unknown> {
    const ring = this.#results;
    let v: unknown;
    if (ring.tryGetNow(LABEL)) {
      v = ring.value;
      ring.value = undefined;
    } else {
      v = await ring.get(-1, LABEL, () => new EOFError(`${LABEL}: the connection to the worker was closed`));
    }
    if (v === null) throw new EOFError(`${LABEL}: the worker ended`);
    return v;
  }

  /** The worker has ended: its reader gets what it sent, then EOFError. */
  ended(): void {
    if (this.#ended || this.#results.closed) return;
    this.#ended = true;
    const ring = this.#results;
    const m = ring.prepare(null, LABEL);
    if (ring.tryPutNow(m)) return;
    // Full, or the worker died holding the put lock (which the put then takes over).
    ring.put(Ring.keep(m), -1, () => peerGone(LABEL)).catch(() => {});
  }

  /** Tells the worker to stop once it has run the tasks sent so far. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#put(null);
    } catch {
      // the ring is closed: the worker is gone already
    }
  }

  /** Frees our hold on the rings and the Connection (the worker has ended). */
  release(): void {
    this.#closed = true;
    for (const m of this.#outbox.splice(0)) Ring.discard(m);
    this.conn.close();
    for (const q of this.#queues) q.close();
  }
}

/** The worker's end: gets tasks, puts results. */
export class WorkerLink {
  readonly #tasks: Ring;
  readonly #results: Ring;
  readonly #own: SimpleQueue[];
  #closed = false;

  constructor(readonly conn: Connection, wire: RingsWire, spinMs: number) {
    if ('shared' in wire) {
      const [a, b, c, d, e, f] = wire.shared;
      this.#tasks = Ring.adopt(a, b, c, spinMs, false);
      this.#results = Ring.adopt(d, e, f, spinMs, false);
      this.#own = [];
    } else {
      this.#tasks = ringOf(wire.tasks);
      this.#results = ringOf(wire.results);
      this.#tasks.setSpin(spinMs);
      this.#own = [wire.tasks, wire.results];
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the pool is gone: nothing but its EOF ever comes on the Connection after the first message. */
  #poolGone(): boolean {
    try {
      return this.conn.closed || this.conn.pollSync(0);
    } catch {
      return true;
    }
  }

  /** The next batch of tasks, waiting for it; EOFError once the pool says stop or is gone. */
  recvSync(): unknown {
    if (this.#closed) throw new EOFError(`${LABEL} worker: closed`);
    for (;;) {
      const v = this.#tasks.getSync(CHECK_MS, LABEL);
      if (v === null) break;
      if (!(v instanceof RingTimeout)) return v;
      if (this.#poolGone()) break;
    }
    this.close();
    throw new EOFError(`${LABEL} worker: the pool closed the connection`);
  }

  /** Whether a batch is already waiting. */
  pending(): boolean {
    return !this.#closed && !this.#tasks.empty();
  }

  /**
   * Puts a message for the pool, waiting for room; throws EPIPE once the pool is gone, or, with
   * `maxMs`, when it stays full that long (then the message is dropped).
   */
  send(msg: unknown, maxMs = -1): void {
    if (this.#closed) throw peerGone(`${LABEL} worker`);
    const ring = this.#results;
    const start = performance.now();
    for (;;) {
      // putSync is synchronous: the prepared message (the codec's scratch) stays valid through it.
      const r = ring.putSync(ring.prepare(msg, LABEL), CHECK_MS);
      if (r === true) return;
      if (this.#poolGone() || (maxMs >= 0 && performance.now() - start >= maxMs)) throw peerGone(`${LABEL} worker`);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#own) q.close();
  }
}
