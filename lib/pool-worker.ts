// A Pool worker: the loop that a pool's process (a Process target) or thread (lib/pool-thread.ts)
// runs — take batches of tasks from the pool's task ring, run them in order, put results back.
// The messages are described in lib/pool-protocol.ts, the wire in lib/pool-link.ts.
import './index.js'; // every type that travels registers its reducer, so task args can hold any of them
import { threadId } from 'node:worker_threads';
import { Connection, DEFAULT_SPIN_MS } from './connection.js';
import { WorkerLink } from './pool-link.js';
import { DenseNumbers, encode } from './codec.js';
import { EOFError } from './errors.js';
import { explainTargetError, loadTarget, type TargetDesc } from './target.js';
import {
  K_APPLY, K_CHUNK, K_DEF, K_ONE, K_STAR, M_BATCH_ERROR, M_DYING, M_INIT_ERROR, M_READY, M_RESULTS,
  PACK_MIN, S_ERROR, S_OK, S_THROWN, errorRecord, isErrorLike, type ErrorRecord, type InitMessage,
} from './pool-protocol.js';

// Results go back in batches: when no task is left to run (none here and none arrived), or
// after this many, or once the oldest unsent one has waited this long — so a stream of tiny
// tasks costs few messages while a slow task never holds back the results before it for long.
const FLUSH_COUNT = 128;
const FLUSH_MS = 0.2;
/** How long an ending worker waits for room to put its last results. */
const EXIT_SEND_MS = 1000;

type Loaded = { fn: Function; desc: TargetDesc } | { error: unknown; desc: TargetDesc };

function cloneable(v: unknown): boolean {
  try {
    encode(v, undefined, []);
    return true;
  } catch {
    return false;
  }
}

function isPeerGone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'EPIPE' || code === 'ECONNRESET';
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}

class Worker {
  readonly #conn: Connection;
  #link: WorkerLink | null = null;
  readonly #fns: (Loaded | undefined)[] = [];
  #name = 'pool worker';
  #entry = '';
  #maxtasks = 0;
  #done = 0;
  /** Results not yet sent: [M_RESULTS, status, value, µs, ...]. */
  #out: unknown[] = [M_RESULTS];
  #firstUnsent = 0;
  #running = false;
  #finished = false;

  constructor(conn: Connection) {
    this.#conn = conn;
  }

  async run(): Promise<void> {
    const conn = this.#conn;
    let init: InitMessage;
    try {
      init = conn.recvSync() as InitMessage;
    } catch (e) {
      if (e instanceof EOFError) return this.#exit(0); // the pool went away before we started
      throw e;
    }
    this.#link = new WorkerLink(conn, init.rings, DEFAULT_SPIN_MS);
    const link = this.#link;
    this.#name = init.name;
    this.#entry = init.entry;
    this.#maxtasks = init.maxtasks;
    // A task that ends the worker (process.exit, a fatal error) leaves its results and which
    // task it was in to the pool, which can then fail exactly that one.
    process.on('exit', this.#onExit);
    if (init.initializer) {
      try {
        const fn = await loadTarget(init.initializer, this.#entry);
        await fn(...init.initargs);
      } catch (e) {
        this.#send([M_INIT_ERROR, this.#record(explainTargetError(e, init.initializer, `Pool ${this.#name}: initializer`))]);
        return this.#exit(1);
      }
    }
    this.#send([M_READY, process.pid, threadId]);
    let lastBatch = 0; // tasks in the batch just run
    for (;;) {
      // About to wait for tasks: send what we have first, unless more tasks are already here (a
      // stream of batches) — a lone task's result (apply) goes at once, without asking.
      if (this.#out.length > 1 && (lastBatch <= 3 || !link.pending())) this.#flush();
      let batch: unknown[];
      try {
        batch = link.recvSync() as unknown[];
      } catch (e) {
        if (e instanceof EOFError || link.closed || isPeerGone(e)) break; // the pool closed us: done
        this.#send([M_BATCH_ERROR, this.#record(e)]); // a batch that did not decode; the stream goes on
        continue;
      }
      lastBatch = batch.length / 3;
      const running = this.#runBatch(batch, 0);
      if (running) await running; // only a batch with an async task (or a new target) waits here
      if (this.#maxtasks > 0 && this.#done >= this.#maxtasks) break;
    }
    if (this.#out.length > 1) this.#flush();
    this.#exit(0);
  }

  /**
   * Runs the batch from entry `i`, synchronously as long as its tasks are; at the first task that
   * returns a promise (or a target to load) it returns a promise that finishes the batch.
   */
  #runBatch(batch: unknown[], i: number): Promise<void> | undefined {
    for (; i < batch.length; i += 3) {
      const kind = batch[i] as number;
      const id = batch[i + 1] as number;
      const payload = batch[i + 2];
      if (kind === K_DEF) return this.#define(id, payload as TargetDesc).then(() => this.#runBatch(batch, i + 3));
      const loaded = this.#fns[id];
      this.#running = true;
      const t0 = performance.now();
      let value: unknown;
      try {
        if (!loaded) throw new Error(`Pool ${this.#name}: task for unknown target #${id} (a bug of multiproc)`);
        if ('error' in loaded) throw loaded.error;
        value = kind === K_CHUNK || kind === K_STAR ? this.#chunk(loaded.fn, kind, payload as ArrayLike<unknown>) : this.#call(loaded.fn, kind, payload);
      } catch (e) {
        this.#done1(t0, S_ERROR, e, loaded);
        continue;
      }
      if (isThenable(value)) {
        return Promise.resolve(value).then(
          (v) => this.#done1(t0, S_OK, v, loaded),
          (e) => this.#done1(t0, S_ERROR, e, loaded),
        ).then(() => this.#runBatch(batch, i + 3));
      }
      this.#done1(t0, S_OK, value, loaded);
    }
    return undefined;
  }

  async #define(id: number, desc: TargetDesc): Promise<void> {
    try {
      this.#fns[id] = { fn: await loadTarget(desc, this.#entry), desc };
    } catch (error) {
      this.#fns[id] = { error, desc };
    }
  }

  #call(fn: Function, kind: number, payload: unknown): unknown {
    if (kind === K_ONE) return fn(payload);
    if (kind === K_APPLY) return fn(...(payload as unknown[]));
    throw new Error(`Pool ${this.#name}: unknown task kind ${kind} (a bug of multiproc)`);
  }

  /** A chunk: its items one after another (an async one awaited before the next), its results as one value. */
  #chunk(fn: Function, kind: number, items: ArrayLike<unknown>): unknown[] | DenseNumbers | Promise<unknown[] | DenseNumbers> {
    const n = items.length;
    const out = new Array<unknown>(n);
    let numbers = true;
    // `out` is ours, dense (every slot is written) and plain: it may skip the codec's key check.
    const finish = () => (numbers && n >= PACK_MIN ? new DenseNumbers(out as number[]) : out);
    for (let j = 0; j < n; j++) {
      const r = kind === K_CHUNK ? fn(items[j]) : fn(...(items[j] as unknown[]));
      if (isThenable(r)) {
        return (async () => {
          out[j] = await r;
          if (typeof out[j] !== 'number') numbers = false;
          for (let k = j + 1; k < n; k++) {
            let v = kind === K_CHUNK ? fn(items[k]) : fn(...(items[k] as unknown[]));
            if (isThenable(v)) v = await v;
            out[k] = v;
            if (typeof v !== 'number') numbers = false;
          }
          return finish();
        })();
      }
      out[j] = r;
      if (typeof r !== 'number') numbers = false;
    }
    return finish();
  }

  /** Records the result (or error) of the task that began at `t0`; sends results when it is time. */
  #done1(t0: number, status: number, value: unknown, loaded: Loaded | undefined): void {
    this.#running = false;
    if (status === S_ERROR) {
      const err = loaded ? explainTargetError(value, loaded.desc, `Pool ${this.#name}`) : value;
      if (isErrorLike(err)) value = this.#record(err);
      else {
        status = S_THROWN;
        value = cloneable(err) ? err : String(err);
      }
    }
    const t1 = performance.now();
    const out = this.#out;
    if (out.length === 1) this.#firstUnsent = t1;
    out.push(status, value, Math.round((t1 - t0) * 1000));
    this.#done++;
    if (out.length >= 1 + 3 * FLUSH_COUNT || t1 - this.#firstUnsent >= FLUSH_MS) this.#flush();
  }

  #record(e: unknown): ErrorRecord {
    return isErrorLike(e) ? errorRecord(e, cloneable) : { name: 'Error', message: String(e), stack: String(e) };
  }

  #flush(): void {
    const out = this.#out;
    this.#out = [M_RESULTS];
    try {
      this.#link!.send(out);
    } catch (e) {
      if (isPeerGone(e)) return; // the pool is gone: the next receive ends the loop
      if (!(e instanceof TypeError)) throw e;
      // A result that cannot travel fails its own task, not the whole batch.
      for (let i = 1; i < out.length; i += 3) {
        if (out[i] === S_ERROR || cloneable(out[i + 1])) continue;
        let why = '';
        try {
          encode(out[i + 1], `Pool ${this.#name}`, []);
        } catch (err) {
          why = (err as Error).message.replace(/\bat msg\b/, 'at result');
        }
        out[i] = S_ERROR;
        out[i + 1] = this.#record(new TypeError(`the task's result cannot be sent back to the pool: ${why}`));
      }
      this.#send(out);
    }
  }

  /** Sends, ignoring a pool that is gone (the worker then ends at its next receive). */
  #send(msg: unknown[]): void {
    try {
      this.#link!.send(msg);
    } catch (e) {
      if (!isPeerGone(e)) throw e;
    }
  }

  readonly #onExit = (): void => {
    if (this.#finished) return;
    this.#finished = true;
    const link = this.#link;
    if (!link) return; // not started: the pool learns of our end from the exit
    try {
      // Bounded: a pool that does not read must not hold the exit up for long.
      if (this.#out.length > 1) link.send(this.#out, EXIT_SEND_MS);
      link.send([M_DYING, this.#running ? 1 : 0], EXIT_SEND_MS);
    } catch {
      // the pool is gone, or a result cannot travel: it learns of our end from the exit
    }
  };

  #exit(code: number): void {
    this.#finished = true;
    this.#link?.close();
    process.exit(code);
  }
}

/**
 * The target of a Pool's worker processes (and the body of its threads): serves `conn` until the
 * pool closes it, or for maxtasksperchild tasks.
 */
export async function poolWorker(conn: Connection): Promise<void> {
  await new Worker(conn).run();
}
