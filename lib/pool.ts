// Pool and ThreadPool (API.md, Pools): Python's multiprocessing.pool — apply, map, starmap, imap
// and their async forms, AsyncResult — over worker processes or threads, crash-proof.
//
// Scheduling. Each worker has its own Connection (lib/pool-launcher.ts). Tasks wait in one queue
// here and go out in batches to the least loaded worker that has room. "Room" is counted in
// estimated work: each target's run time per item is measured by the workers (an average kept
// here), and a worker is given tasks while the work already outstanding on it stays under
// TARGET_US (and at most MAX_WINDOW tasks). So tiny tasks travel hundreds per message, both ways,
// and the pipe never runs dry; while a task whose cost is unknown or long goes only to an idle
// worker, as in Python, where an idle worker takes the next task from a shared queue.
// Why per-worker channels rather than one shared-memory queue that idle workers pull from: the
// pool then knows which worker holds which task (what makes a worker's death exact to handle:
// with a shared queue a task taken by a worker that died is simply gone, Python's old hang), and
// workers share no lock. What it costs is measured by bench/pool.mjs: the parent's CPU time per
// task of a chunksize-1 map beside the workers', and apply()'s round trip beside a bare Pipe's.
import { availableParallelism } from 'node:os';
import { DenseNumbers, encode } from './codec.js';
import { registerReducer } from './reduction.js';
import { EOFError, ProcessError, TimeoutError } from './errors.js';
import { cpuCount } from './process.js';
import { describeTarget, entryUrl, type Target, type TargetDesc } from './target.js';
import { POOL_SPIN_MS, processLauncher, threadLauncher, type PoolLauncher, type PoolWorkerHandle } from './pool-launcher.js';
import {
  K_APPLY, K_CHUNK, K_DEF, K_ONE, K_STAR, M_BATCH_ERROR, M_DYING, M_INIT_ERROR, M_READY, M_RESULTS,
  PACK_MIN, S_ERROR, S_OK, errorFromRecord, type ErrorRecord, type InitMessage,
} from './pool-protocol.js';

/** Estimated work (µs) a worker may hold beyond the task it runs; bounds how unevenly work can sit. */
const TARGET_US = 1000;
/** At most this many tasks outstanding on one worker. */
const MAX_WINDOW = 512;
/** At most this many tasks in one message. */
const BATCH_MAX = 256;
/**
 * At most about this many items in one message (a bigger first task goes alone): a worker starts
 * on a message only once it has all of it, so big chunks go one per message and the worker
 * starts on the first while the next are still on their way.
 */
const BATCH_UNITS = 4096;
/**
 * A busy worker is sent more only once it has room for this many more tasks (or the queue holds
 * fewer): refilling a task at a time as results trickle in would cost a message per task.
 */
const REFILL_MIN = 32;
/** What a task costs a worker besides running the target (decode, encode, bookkeeping), µs. */
const TASK_OVERHEAD_US = 2;
/** Workers that die before they are ready, in a row, before the pool gives up. */
const BOOT_FAILURES = 3;
/** After terminate(), how long a worker has to end on SIGTERM before it gets SIGKILL. */
const TERMINATE_GRACE_MS = 1000;
/** A worker that has ended gets this long for its EOF to arrive before the pool settles its tasks. */
const EOF_GRACE_MS = 1000;
/** A worker whose connection ended gets this long to exit before it is killed. */
const EXIT_GRACE_MS = 2000;
/** Tasks an imap may have read ahead of its consumer, per worker (backpressure). */
const IMAP_AHEAD_PER_WORKER = 128;
const CPUS = availableParallelism();

export type { Target } from './target.js';

export interface PoolOptions {
  /** Number of workers (default: cpuCount()). */
  processes?: number;
  /** Run once in each worker before it takes tasks, with `initargs`. */
  initializer?: Target;
  initargs?: unknown[];
  /** A worker exits after this many tasks and is replaced (default: never). */
  maxtasksperchild?: number | null;
  /** @internal */
  [kPoolEntry]?: string;
}

export interface ApplyOptions<R> {
  /** Called with the result when it is ready (in this process). */
  callback?: (result: R) => void;
  /** Called with the error when the task failed. */
  errorCallback?: (error: unknown) => void;
}

export interface MapOptions {
  /** Items per task: a positive integer. map's default splits the input in about 4 tasks per worker; imap's is 1. */
  chunksize?: number;
}

export interface MapAsyncOptions<R> extends MapOptions, ApplyOptions<R> {}

type AnyFn = (...args: any[]) => unknown;
type ResultOf<F> = F extends AnyFn ? Awaited<ReturnType<F>> : any;
type ArgsOf<F> = F extends AnyFn ? Parameters<F> : unknown[];
type ItemOf<F> = F extends AnyFn ? Parameters<F>[0] : unknown;
type Input<T> = Iterable<T> | AsyncIterable<T>;

// ---- results ----

/** The result of an async submission (Python's AsyncResult / ApplyResult / MapResult). */
export class AsyncResult<R = unknown> {
  #state: 'pending' | 'ok' | 'error' = 'pending';
  #value: unknown;
  #waiters: (() => void)[] = [];
  readonly #callback: ((r: R) => void) | undefined;
  readonly #errorCallback: ((e: unknown) => void) | undefined;

  /** @internal */
  constructor(callback?: (r: R) => void, errorCallback?: (e: unknown) => void) {
    this.#callback = callback;
    this.#errorCallback = errorCallback;
  }

  /** Whether the task has finished (either way). */
  ready(): boolean {
    return this.#state !== 'pending';
  }

  /** Whether the task finished without an error; throws if it has not finished. */
  successful(): boolean {
    if (this.#state === 'pending') throw new Error('AsyncResult.successful: the result is not ready yet; await result.wait() first');
    return this.#state === 'ok';
  }

  /** The result; rejects with the task's error, or with TimeoutError if not ready within `timeoutMs`. */
  get(timeoutMs?: number | null): Promise<R> {
    if (this.#state === 'ok') return Promise.resolve(this.#value as R);
    if (this.#state === 'error') return Promise.reject(this.#value);
    let t: number;
    try {
      t = timeoutArg(timeoutMs, 'AsyncResult.get');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<R>((resolve, reject) => {
      const settle = () => (this.#state === 'ok' ? resolve(this.#value as R) : reject(this.#value));
      if (t < 0) {
        this.#waiters.push(settle);
        return;
      }
      const timer = setTimeout(() => {
        this.#unwait(done);
        reject(new TimeoutError(`AsyncResult.get: the result is not ready after ${t} ms`));
      }, t);
      const done = () => {
        clearTimeout(timer);
        settle();
      };
      this.#waiters.push(done);
    });
  }

  /** Resolves once the result is ready, or after `timeoutMs`; to whether it is ready. */
  wait(timeoutMs?: number | null): Promise<boolean> {
    if (this.#state !== 'pending') return Promise.resolve(true);
    let t: number;
    try {
      t = timeoutArg(timeoutMs, 'AsyncResult.wait');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<boolean>((resolve) => {
      if (t < 0) {
        this.#waiters.push(() => resolve(true));
        return;
      }
      const timer = setTimeout(() => {
        this.#unwait(done);
        resolve(false);
      }, t);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#waiters.push(done);
    });
  }

  #unwait(w: () => void): void {
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  /** @internal */
  _resolve(value: R): void {
    if (this.#state !== 'pending') return;
    this.#state = 'ok';
    this.#value = value;
    if (this.#callback) callSafely(this.#callback, value);
    this.#wake();
  }

  /** @internal */
  _reject(error: unknown): void {
    if (this.#state !== 'pending') return;
    this.#state = 'error';
    this.#value = error;
    if (this.#errorCallback) callSafely(this.#errorCallback, error);
    this.#wake();
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }
}

/** A callback's throw surfaces as an uncaught exception, as an event listener's would, not lost. */
function callSafely<T>(cb: (v: T) => void, v: T): void {
  try {
    cb(v);
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
  }
}

function timeoutArg(ms: number | null | undefined, what: string): number {
  if (ms === undefined || ms === null || ms === Infinity) return -1;
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError(`${what}: the timeout must be a number of milliseconds, got ${String(ms)}`);
  return Math.max(0, ms);
}

// ---- tasks and jobs ----

/** What a task belongs to; told when each of its tasks ends. */
interface Job {
  /** False once its results are no longer wanted: its queued tasks are dropped. */
  readonly live: boolean;
  resolveTask(task: Task, value: unknown): void;
  rejectTask(task: Task, error: unknown): void;
}

class Task {
  /** Estimated cost (µs) while outstanding on a worker. */
  cost = 0;
  constructor(
    readonly job: Job,
    readonly kind: number,
    readonly fn: number,
    readonly payload: unknown,
    /** Where its results go in the job: an item offset (map) or a task number (imap). */
    readonly index: number,
    /** Items it carries. */
    readonly units: number,
  ) {}
}

class ApplyJob implements Job {
  readonly live = true;
  constructor(readonly result: AsyncResult<unknown>) {}
  resolveTask(_t: Task, value: unknown): void {
    this.result._resolve(value);
  }
  rejectTask(_t: Task, error: unknown): void {
    this.result._reject(error);
  }
}

class MapJob implements Job {
  readonly live = true;
  #values: unknown[] | null = null;
  left: number;
  constructor(readonly result: AsyncResult<unknown[]>, readonly n: number, tasks: number) {
    this.left = tasks;
    if (tasks === 0) result._resolve(this.values());
  }
  /**
   * The result Array, made on first use. The pool asks for it once the first tasks are on their
   * way (see #submitMap): a long one lives in V8's large-object space, whose fresh pages cost
   * page faults (about 4 ms for 100,000 numbers on a VM), better paid while the workers run.
   */
  values(): unknown[] {
    return (this.#values ??= new Array(this.n));
  }
  resolveTask(t: Task, value: unknown): void {
    const v = this.values();
    if (t.kind === K_CHUNK || t.kind === K_STAR) {
      const a = value as ArrayLike<unknown>;
      for (let i = 0, j = t.index; i < a.length; i++, j++) v[j] = a[i];
    } else {
      v[t.index] = value;
    }
    if (--this.left === 0) this.result._resolve(v);
  }
  rejectTask(_t: Task, error: unknown): void {
    // As in Python, the first failure settles the result; the other tasks still run.
    this.result._reject(error);
  }
}

/** A ring buffer: O(1) at both ends. */
class Deque<T> {
  #a: (T | undefined)[] = new Array(16);
  #head = 0;
  #len = 0;
  get length(): number {
    return this.#len;
  }
  push(x: T): void {
    if (this.#len === this.#a.length) this.#grow();
    this.#a[(this.#head + this.#len++) & (this.#a.length - 1)] = x;
  }
  unshift(x: T): void {
    if (this.#len === this.#a.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#a.length - 1);
    this.#a[this.#head] = x;
    this.#len++;
  }
  pop(): T | undefined {
    if (!this.#len) return undefined;
    const i = (this.#head + --this.#len) & (this.#a.length - 1);
    const x = this.#a[i];
    this.#a[i] = undefined;
    return x;
  }
  peek(): T | undefined {
    return this.#len ? this.#a[this.#head] : undefined;
  }
  shift(): T | undefined {
    if (!this.#len) return undefined;
    const x = this.#a[this.#head];
    this.#a[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#a.length - 1);
    this.#len--;
    return x;
  }
  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    while (this.#len) out.push(this.shift()!);
    return out;
  }
  #grow(): void {
    const a = new Array<T | undefined>(this.#a.length * 2);
    for (let i = 0; i < this.#len; i++) a[i] = this.#a[(this.#head + i) & (this.#a.length - 1)];
    this.#a = a;
    this.#head = 0;
  }
}

/** The pool as its jobs see it. */
interface Core {
  readonly what: string;
  /** Queues tasks for the workers. */
  enqueue(task: Task): void;
  /** Tasks an imap may read ahead of its consumer; unbounded once the pool is closed, so join() can finish. */
  aheadLimit(): number;
  /** A job has finished reading its input (`it`: an imap, which close() and terminate() need no more). */
  fed(it?: IMapIterator<unknown>): void;
  /** Tasks were dropped: let the scheduler clear them (and see whether the work is done). */
  wake(): void;
}

type Outcome = { ok: true; values: ArrayLike<unknown> } | { ok: false; error: unknown };

/**
 * The iterator `imap` and `imapUnordered` return (Python's IMapIterator). It reads its input as
 * the pool needs it, at most a bounded number of tasks ahead of what has been taken from it.
 */
export class IMapIterator<R = unknown> implements AsyncIterableIterator<R>, Job {
  #live = true;
  readonly #core: Core;
  readonly #ordered: boolean;
  readonly #fn: number;
  readonly #kind: number;
  readonly #chunksize: number;
  readonly #source: Iterator<unknown> | AsyncIterator<unknown>;
  readonly #isAsync: boolean;
  #pulled = 0; // tasks made
  #consumed = 0; // tasks handed out whole (ordered: the next task to hand out)
  #exhausted = false;
  #inputFinished = false;
  #pulling = false;
  #inputError: { at: number; error: unknown } | null = null;
  #failure: { error: unknown } | null = null; // terminate(), a broken pool: every next() rejects
  readonly #done = new Map<number, Outcome>(); // ordered: outcomes by task number
  readonly #ready: Outcome[] = []; // unordered: outcomes in completion order
  #current: ArrayLike<unknown> | null = null;
  #pos = 0;
  readonly #waiters: { settle: () => boolean }[] = [];

  /** @internal */
  constructor(core: Core, fn: number, iterable: Input<unknown>, chunksize: number, ordered: boolean, star: boolean) {
    this.#core = core;
    this.#fn = fn;
    this.#ordered = ordered;
    this.#chunksize = chunksize;
    this.#kind = chunksize === 1 ? (star ? K_APPLY : K_ONE) : star ? K_STAR : K_CHUNK;
    this.#isAsync = typeof (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
    this.#source = this.#isAsync ? (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]() : (iterable as Iterable<unknown>)[Symbol.iterator]();
  }

  get live(): boolean {
    return this.#live;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next result; rejects with TimeoutError if none is ready within `timeoutMs` (the result is not lost). */
  next(timeoutMs?: number | null): Promise<IteratorResult<R>> {
    const now = this.#take();
    if (now) return now;
    let t: number;
    try {
      t = timeoutArg(timeoutMs, 'IMapIterator.next');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        settle: () => {
          const r = this.#take();
          if (!r) return false;
          clearTimeout(timer);
          r.then(resolve, reject);
          return true;
        },
      };
      this.#waiters.push(waiter);
      if (t >= 0) {
        timer = setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new TimeoutError(`IMapIterator.next: no result within ${t} ms`));
        }, t);
      }
    });
  }

  /** Stops: reads no more input, drops the tasks not yet started; results still running are discarded. */
  return(value?: unknown): Promise<IteratorResult<R>> {
    if (this.#live) {
      this.#live = false;
      this.#stopReading();
    }
    for (const w of this.#waiters.splice(0)) w.settle();
    return Promise.resolve({ done: true, value: value as R });
  }

  /** @internal Starts reading the input. */
  _start(): void {
    this.#pump();
  }

  resolveTask(t: Task, value: unknown): void {
    this.#arrive(t.index, { ok: true, values: this.#kind === K_CHUNK || this.#kind === K_STAR ? (value as ArrayLike<unknown>) : [value] });
  }

  rejectTask(t: Task, error: unknown): void {
    this.#arrive(t.index, { ok: false, error });
  }

  /** @internal The pool failed (terminate, broken): every result not taken yet rejects with `error`. */
  _fail(error: unknown): void {
    if (!this.#live) return;
    this.#failure = { error };
    this.#live = false;
    this.#stopReading();
    this.#serve();
  }

  /** @internal The pool was closed: read the rest of the input without waiting for the consumer. */
  _unthrottle(): void {
    this.#pump();
  }

  #arrive(index: number, o: Outcome): void {
    if (!this.#live) return;
    if (this.#ordered) this.#done.set(index, o);
    else this.#ready.push(o);
    this.#serve();
  }

  #serve(): void {
    while (this.#waiters.length && this.#waiters[0]!.settle()) this.#waiters.shift();
  }

  /** What next() would settle with now, or null if it must wait. */
  #take(): Promise<IteratorResult<R>> | null {
    for (;;) {
      if (this.#current) {
        if (this.#pos < this.#current.length) return Promise.resolve({ done: false, value: this.#current[this.#pos++] as R });
        this.#current = null;
      }
      if (this.#failure) return Promise.reject(this.#failure.error);
      if (!this.#live) return Promise.resolve({ done: true, value: undefined as R });
      let o: Outcome | undefined;
      if (this.#ordered) {
        if (this.#inputError && this.#inputError.at === this.#consumed) return this.#inputFailed();
        o = this.#done.get(this.#consumed);
        if (o) this.#done.delete(this.#consumed);
      } else {
        o = this.#ready.shift();
      }
      if (!o) {
        if (this.#exhausted && this.#consumed === this.#pulled) {
          if (this.#inputError) return this.#inputFailed();
          this.#live = false;
          return Promise.resolve({ done: true, value: undefined as R });
        }
        return null;
      }
      this.#consumed++;
      this.#pump(); // room for more input
      if (!o.ok) return Promise.reject(o.error);
      this.#current = o.values;
      this.#pos = 0;
    }
  }

  #inputFailed(): Promise<never> {
    const e = this.#inputError!.error;
    this.#live = false;
    return Promise.reject(e);
  }

  #stopReading(): void {
    const reading = !this.#exhausted;
    this.#exhausted = true;
    this.#finishInput();
    this.#core.wake(); // its queued tasks are dropped now rather than when the queue reaches them
    if (!reading) return;
    try {
      const r = this.#source.return?.();
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, () => {});
    } catch {
      // the input's cleanup failed; nothing is waiting for it
    }
  }

  #room(): boolean {
    return this.#pulled - this.#consumed < this.#core.aheadLimit();
  }

  #submit(items: unknown[]): void {
    const payload = this.#chunksize === 1 ? items[0] : this.#kind === K_CHUNK ? packChunk(items) : items;
    this.#core.enqueue(new Task(this, this.#kind, this.#fn, payload, this.#pulled++, items.length));
  }

  #pump(): void {
    if (this.#pulling || this.#exhausted || !this.#live) return;
    if (this.#isAsync) {
      void this.#pumpAsync();
      return;
    }
    const src = this.#source as Iterator<unknown>;
    while (!this.#exhausted && this.#room()) {
      const items: unknown[] = [];
      try {
        while (items.length < this.#chunksize) {
          const r = src.next();
          if (r.done) {
            this.#exhausted = true;
            break;
          }
          items.push(r.value);
        }
      } catch (error) {
        this.#inputThrew(error, items.length > 0);
      }
      if (items.length) this.#submit(items);
    }
    if (this.#exhausted) this.#inputDone();
  }

  /** The same as the loop above for an async input: one pull at a time (a sync one would not wait). */
  async #pumpAsync(): Promise<void> {
    this.#pulling = true;
    const src = this.#source as AsyncIterator<unknown>;
    try {
      while (!this.#exhausted && this.#live && this.#room()) {
        const items: unknown[] = [];
        try {
          while (items.length < this.#chunksize) {
            const r = await src.next();
            if (!this.#live) return;
            if (r.done) {
              this.#exhausted = true;
              break;
            }
            items.push(r.value);
          }
        } catch (error) {
          this.#inputThrew(error, items.length > 0);
        }
        if (items.length) this.#submit(items);
      }
      if (this.#exhausted) this.#inputDone();
    } finally {
      this.#pulling = false;
    }
  }

  /** The input threw: its error comes after the items read before it (`partial`: a chunk, submitted next). */
  #inputThrew(error: unknown, partial: boolean): void {
    this.#exhausted = true;
    this.#inputError = { at: this.#pulled + (partial ? 1 : 0), error };
  }

  #inputDone(): void {
    this.#finishInput();
    this.#serve(); // a consumer waiting at the end, or for the input's error
  }

  #finishInput(): void {
    if (this.#inputFinished) return;
    this.#inputFinished = true;
    this.#core.fed(this);
  }
}

// ---- the pool ----

/** A worker as the scheduler sees it. */
class Slot {
  readonly outstanding = new Deque<Task>();
  /** Tasks per batch sent and not fully answered, oldest first (M_BATCH_ERROR fails the oldest). */
  readonly batches = new Deque<number>();
  outCost = 0;
  assigned = 0;
  readonly defined: boolean[] = [];
  ready = false;
  reading = false;
  gone = false;
  /** Being ended by the pool (close after the work, terminate): no replacement, no blame. */
  stopping = false;
  /** Sends failed: the worker is gone, the EOF will tell. */
  unusable = false;
  dying: { running: boolean } | null = null;
  cancelExitWatch: () => void = () => {};
  constructor(readonly handle: PoolWorkerHandle) {}
}

const kLauncher = Symbol('multiproc.poolLauncher');

/**
 * @internal Option key: the module URL the workers resolve function targets' imports (and bare
 * package names) from, instead of this process's entry. A manager's Pool lives in the manager
 * process but runs the targets of the process that made it (lib/manager-pool.ts).
 */
export const kPoolEntry: unique symbol = Symbol('multiproc.poolEntry');

/**
 * Python's multiprocessing.Pool: tasks run in `processes` worker processes. Tasks are targets (a
 * self-contained function, sent to each worker once, or `{ module, name }`); their arguments and
 * results travel as messages do, handles included.
 */
export class Pool {
  static [kLauncher]: PoolLauncher = processLauncher;

  readonly #launcher: PoolLauncher;
  readonly #what: string;
  readonly #size: number;
  readonly #init: Omit<InitMessage, 'name' | 'rings'>;
  readonly #maxtasks: number;
  #state: 'run' | 'close' | 'terminate' = 'run';
  #broken: Error | null = null;
  readonly #workers: Slot[] = [];
  readonly #queue = new Deque<Task>();
  /** Tasks queued or outstanding, not yet settled. */
  #pending = 0;
  /** Jobs still reading their input. */
  #feeding = 0;
  readonly #imaps = new Set<IMapIterator<unknown>>();
  /** map results whose async input is still being read. */
  readonly #collecting = new Set<AsyncResult<unknown[]>>();
  readonly #fnIds = new Map<string, number>();
  readonly #fnDescs: TargetDesc[] = [];
  /** Measured µs per item of each target (NaN until measured). */
  readonly #unitCost: number[] = [];
  #dispatchQueued = false;
  /** Whether our ends of the workers' connections spin before parking (see #tuneSpin). */
  #spin = true;
  #bootFailures = 0;
  /** Keeps this process alive while work is unfinished (a pending result alone would not). */
  readonly #keepAlive: NodeJS.Timeout;
  #keepAliveOn = false;
  #joined: Promise<void> | null = null;
  #joinResolve: (() => void) | null = null;
  readonly #core: Core;

  constructor(options: PoolOptions | number = {}) {
    this.#launcher = (new.target as unknown as { [kLauncher]: PoolLauncher })[kLauncher] ?? processLauncher;
    const what = (this.#what = this.#launcher.what);
    if (typeof options === 'number') options = { processes: options };
    if (typeof options !== 'object' || options === null) throw new TypeError(`${what}: expected an options object { processes?, initializer?, initargs?, maxtasksperchild? }, got ${options === null ? 'null' : typeof options}`);
    const { processes = cpuCount(), initializer, initargs = [], maxtasksperchild = null } = options;
    if (!Number.isInteger(processes) || processes < 1) throw new RangeError(`${what}: processes must be an integer >= 1, got ${String(processes)}`);
    if (maxtasksperchild !== null && maxtasksperchild !== undefined && (!Number.isInteger(maxtasksperchild) || maxtasksperchild < 1)) {
      throw new RangeError(`${what}: maxtasksperchild must be a positive integer or null, got ${String(maxtasksperchild)}`);
    }
    if (!Array.isArray(initargs)) throw new TypeError(`${what}: initargs must be an array, got ${typeof initargs}`);
    const init = {
      initializer: initializer === undefined || initializer === null ? null : describeTarget(initializer, `${what}: initializer`),
      initargs, maxtasks: maxtasksperchild ?? 0, entry: options[kPoolEntry] ?? entryUrl(),
    };
    try {
      encode(init, `${what}: cannot send initargs`, []); // fails here, naming the argument, rather than in every worker
    } catch (e) {
      if (e instanceof TypeError) throw new TypeError(e.message.replace(/\bmsg\.initargs\b/g, 'initargs'), { cause: e });
      throw e;
    }
    this.#init = init;
    this.#size = processes;
    this.#maxtasks = maxtasksperchild ?? 0;
    this.#keepAlive = setInterval(() => {}, 2 ** 30);
    this.#keepAlive.unref();
    this.#core = {
      what,
      enqueue: (t) => this.#enqueue(t),
      aheadLimit: () => (this.#state === 'run' ? this.#size * IMAP_AHEAD_PER_WORKER : Infinity),
      fed: (it) => {
        if (it) this.#imaps.delete(it);
        this.#feeding--;
        this.#maybeFinish();
        this.#checkJoined();
      },
      wake: () => this.#queueDispatch(),
    };
    try {
      for (let i = 0; i < processes; i++) this.#startWorker();
    } catch (e) {
      void this.terminate();
      throw e;
    }
  }

  /** The number of workers the pool keeps. */
  get processes(): number {
    return this.#size;
  }

  // ---- submitting ----

  /** Runs `fn(...args)` in a worker; resolves to its result. */
  apply<F extends Target>(fn: F, args?: ArgsOf<F>): Promise<ResultOf<F>> {
    return this.#applyAsync('apply', fn, args).get();
  }

  /** Runs `fn(...args)` in a worker; the result arrives in the AsyncResult (and the callbacks). */
  applyAsync<F extends Target>(fn: F, args?: ArgsOf<F>, options?: ApplyOptions<ResultOf<F>>): AsyncResult<ResultOf<F>> {
    return this.#applyAsync('applyAsync', fn, args, options);
  }

  /** `fn(item)` for every item, in order; tasks carry `chunksize` items each. */
  map<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapOptions): Promise<ResultOf<F>[]> {
    return this.#mapAsync('map', fn, iterable, options, false).get();
  }

  mapAsync<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapAsyncOptions<ResultOf<F>[]>): AsyncResult<ResultOf<F>[]> {
    return this.#mapAsync('mapAsync', fn, iterable, options, false);
  }

  /** `fn(...args)` for every args array, in order. */
  starmap<F extends Target>(fn: F, iterable: Input<ArgsOf<F>>, options?: MapOptions): Promise<ResultOf<F>[]> {
    return this.#mapAsync('starmap', fn, iterable, options, true).get();
  }

  starmapAsync<F extends Target>(fn: F, iterable: Input<ArgsOf<F>>, options?: MapAsyncOptions<ResultOf<F>[]>): AsyncResult<ResultOf<F>[]> {
    return this.#mapAsync('starmapAsync', fn, iterable, options, true);
  }

  /** `fn(item)` for every item, yielded in order as they come; reads the input (sync or async) as needed. */
  imap<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapOptions): IMapIterator<ResultOf<F>> {
    return this.#imap('imap', fn, iterable, options, true);
  }

  /** Like imap, yielding results in the order they complete. */
  imapUnordered<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapOptions): IMapIterator<ResultOf<F>> {
    return this.#imap('imapUnordered', fn, iterable, options, false);
  }

  #applyAsync(method: string, fn: Target, args: unknown[] = [], options: ApplyOptions<any> = {}): AsyncResult<any> {
    this.#checkOpen(method);
    const id = this.#fnId(fn, method);
    if (!Array.isArray(args)) throw new TypeError(`${this.#what}.${method}: args must be an array, got ${typeof args}`);
    const { callback, errorCallback } = this.#callbacks(method, options);
    const result = new AsyncResult<unknown>(callback, errorCallback);
    this.#enqueue(new Task(new ApplyJob(result), K_APPLY, id, args, 0, 1));
    return result;
  }

  #mapAsync(method: string, fn: Target, iterable: Input<unknown>, options: MapAsyncOptions<any> = {}, star: boolean): AsyncResult<any> {
    this.#checkOpen(method);
    const id = this.#fnId(fn, method);
    const chunksize = this.#chunksizeArg(method, options.chunksize, true);
    const { callback, errorCallback } = this.#callbacks(method, options);
    const result = new AsyncResult<unknown[]>(callback, errorCallback);
    const isAsync = checkInput(`${this.#what}.${method}`, iterable);
    if (!isAsync) {
      this.#submitMap(result, id, Array.isArray(iterable) ? iterable : Array.from(iterable as Iterable<unknown>), chunksize, star);
      return result;
    }
    // An async input is read whole first (map needs its length for the chunk size).
    this.#feeding++;
    this.#collecting.add(result);
    void (async () => {
      const items: unknown[] = [];
      try {
        for await (const x of iterable as AsyncIterable<unknown>) {
          items.push(x);
          if (result.ready()) break; // the pool was terminated meanwhile
        }
      } catch (e) {
        result._reject(e);
      }
      this.#collecting.delete(result);
      if (!result.ready()) {
        if (this.#broken || this.#state === 'terminate') result._reject(this.#broken ?? terminatedError(this.#what));
        else this.#submitMap(result, id, items, chunksize, star);
      }
      this.#core.fed(); // after the tasks are queued: close() must not end the workers before
    })();
    return result;
  }

  #submitMap(result: AsyncResult<unknown[]>, fn: number, items: unknown[], chunksize: number, star: boolean): void {
    const n = items.length;
    // Python's default: about four tasks per worker.
    const cs = chunksize > 0 ? chunksize : Math.max(1, Math.ceil(n / (this.#size * 4)));
    const job = new MapJob(result, n, Math.ceil(n / cs));
    if (cs === 1) {
      const kind = star ? K_APPLY : K_ONE;
      for (let i = 0; i < n; i++) this.#enqueue(new Task(job, kind, fn, items[i], i, 1));
    } else {
      const kind = star ? K_STAR : K_CHUNK;
      for (let i = 0; i < n; i += cs) {
        const chunk = items.slice(i, i + cs);
        this.#enqueue(new Task(job, kind, fn, star ? chunk : packChunk(chunk), i, chunk.length));
      }
    }
    // After the dispatch that #enqueue queued: the first tasks are sent before the result is made.
    if (n > 0) queueMicrotask(() => job.values());
  }

  #imap(method: string, fn: Target, iterable: Input<unknown>, options: MapOptions = {}, ordered: boolean): IMapIterator<any> {
    this.#checkOpen(method);
    const id = this.#fnId(fn, method);
    const chunksize = this.#chunksizeArg(method, options.chunksize, false);
    checkInput(`${this.#what}.${method}`, iterable);
    const it = new IMapIterator<unknown>(this.#core, id, iterable, chunksize, ordered, false);
    this.#imaps.add(it);
    this.#feeding++;
    it._start();
    return it;
  }

  #checkOpen(method: string): void {
    if (this.#broken) throw new ProcessError(`${this.#what}.${method}: the pool is broken (${this.#broken.message}); make a new one`, { cause: this.#broken });
    if (this.#state !== 'run') {
      throw new Error(`${this.#what}.${method}: the pool is ${this.#state === 'close' ? 'closed' : 'terminated'}; no task can be submitted after close() or terminate()`);
    }
  }

  #chunksizeArg(method: string, chunksize: unknown, auto: boolean): number {
    if (chunksize === undefined || chunksize === null) return auto ? 0 : 1;
    if (typeof chunksize !== 'number' || !Number.isInteger(chunksize) || chunksize < 1) {
      throw new RangeError(`${this.#what}.${method}: chunksize must be a positive integer, got ${String(chunksize)}`);
    }
    return chunksize;
  }

  #callbacks(method: string, options: ApplyOptions<any>): ApplyOptions<any> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`${this.#what}.${method}: options must be an object`);
    const { callback, errorCallback } = options;
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError(`${this.#what}.${method}: callback must be a function`);
    if (errorCallback !== undefined && typeof errorCallback !== 'function') throw new TypeError(`${this.#what}.${method}: errorCallback must be a function`);
    return { callback, errorCallback };
  }

  #fnId(fn: Target, method: string): number {
    const desc = describeTarget(fn, `${this.#what}.${method}`);
    const key = desc.kind === 'function' ? desc.hash : `${desc.specifier}#${desc.name}`;
    let id = this.#fnIds.get(key);
    if (id === undefined) {
      id = this.#fnDescs.length;
      this.#fnIds.set(key, id);
      this.#fnDescs.push(desc);
      this.#unitCost.push(NaN);
    }
    return id;
  }

  #enqueue(t: Task): void {
    this.#queue.push(t);
    if (this.#pending++ === 0) this.#updateKeepAlive();
    this.#queueDispatch();
  }

  /**
   * Dispatch after the caller's synchronous code: a loop of submissions goes out in batches, a
   * single one after a microtask.
   */
  #queueDispatch(): void {
    if (this.#dispatchQueued) return;
    this.#dispatchQueued = true;
    queueMicrotask(this.#dispatchSoon);
  }

  readonly #dispatchSoon = (): void => {
    this.#dispatchQueued = false;
    this.#dispatch();
  };

  // ---- scheduling ----

  #costOf(t: Task): number {
    const c = this.#unitCost[t.fn]!;
    return c === c ? TASK_OVERHEAD_US + c * t.units : TARGET_US; // unknown (NaN): as much as a worker may hold
  }

  #canTake(w: Slot, cost: number): boolean {
    if (w.gone || w.unusable || w.stopping) return false;
    if (this.#maxtasks > 0 && w.assigned >= this.#maxtasks) return false;
    const n = w.outstanding.length;
    return n === 0 || (n < MAX_WINDOW && w.outCost + cost <= TARGET_US);
  }

  #dispatch(): void {
    const q = this.#queue;
    while (q.length > 0) {
      const head = q.peek()!;
      if (!head.job.live) {
        q.shift();
        this.#taskEnded();
        continue;
      }
      const cost = this.#costOf(head);
      // Room for a refill: as many tasks as one message of them carries, up to REFILL_MIN.
      const refill = cost * Math.min(q.length, REFILL_MIN, Math.max(1, Math.floor(BATCH_UNITS / head.units)));
      let best: Slot | null = null;
      let accepting = 0;
      for (const w of this.#workers) {
        if (!this.#canTake(w, cost) || (w.outstanding.length > 0 && w.outCost + refill > TARGET_US)) continue;
        accepting++;
        if (!best || w.outCost < best.outCost || (w.outCost === best.outCost && w.outstanding.length < best.outstanding.length)) best = w;
      }
      if (!best) break;
      // Spread a short queue over every worker with room rather than fill the first.
      this.#sendBatch(best, Math.min(BATCH_MAX, Math.ceil(q.length / accepting)));
    }
    this.#tuneSpin();
  }

  /**
   * Our ends of the connections spin (POOL_SPIN_MS) while this process and the busy workers fit
   * the CPUs — an apply's round trip then skips the wake-ups — and park at once while the busy
   * workers need every CPU (a map): a spin there would take a CPU from a worker.
   */
  #tuneSpin(): void {
    if (POOL_SPIN_MS === 0) return;
    let busy = 0;
    for (const w of this.#workers) if (w.outstanding.length > 0) busy++;
    const want = busy < CPUS;
    if (want === this.#spin) return;
    this.#spin = want;
    for (const w of this.#workers) w.handle.link.setSpin(want ? POOL_SPIN_MS : 0);
  }

  #sendBatch(w: Slot, max: number): void {
    const q = this.#queue;
    const msg: unknown[] = [];
    const tasks: Task[] = [];
    const defs: number[] = [];
    let units = 0;
    while (tasks.length < max && q.length > 0) {
      const t = q.peek()!;
      if (!t.job.live) {
        q.shift();
        this.#taskEnded();
        continue;
      }
      const cost = this.#costOf(t);
      if (tasks.length > 0 && (!this.#canTake(w, cost) || units + t.units > BATCH_UNITS)) break;
      units += t.units;
      q.shift();
      if (!w.defined[t.fn]) {
        w.defined[t.fn] = true;
        defs.push(t.fn);
        msg.push(K_DEF, t.fn, this.#fnDescs[t.fn]);
      }
      msg.push(t.kind, t.fn, t.payload);
      t.cost = cost;
      w.outCost += cost;
      w.outstanding.push(t);
      w.assigned++;
      tasks.push(t);
    }
    if (tasks.length === 0) return;
    try {
      w.handle.link.send(msg);
    } catch (e) {
      this.#unsend(w, tasks, defs);
      const code = (e as NodeJS.ErrnoException).code;
      if (e instanceof TypeError) this.#refuseUncloneable(tasks);
      else if (code !== 'EPIPE' && code !== 'ECONNRESET' && !w.handle.link.closed) {
        // Too big for the connection, most likely: these tasks cannot be sent as they are.
        for (const t of tasks) this.#settleTask(t, false, new Error(`${this.#what}: cannot send a task: ${(e as Error).message}`, { cause: e }));
      } else {
        // The worker is gone (EPIPE) or its connection failed: nothing of this batch reached it.
        this.#requeue(tasks);
        w.unusable = true;
        if (!w.reading) void this.#lost(w, e);
      }
      return;
    }
    w.batches.push(tasks.length);
    if (!w.reading) void this.#pump(w);
  }

  /** Takes back a batch that was not sent from the worker's books; the caller puts the tasks back. */
  #unsend(w: Slot, tasks: Task[], defs: number[]): void {
    for (let i = tasks.length; i > 0; i--) w.outstanding.pop();
    for (const t of tasks) w.outCost -= t.cost;
    w.assigned -= tasks.length;
    for (const id of defs) w.defined[id] = false;
  }

  #requeue(tasks: Task[]): void {
    for (let i = tasks.length - 1; i >= 0; i--) this.#queue.unshift(tasks[i]!);
  }

  /** A batch did not encode: the tasks whose arguments cannot travel fail, naming the argument; the others go back. */
  #refuseUncloneable(tasks: Task[]): void {
    const keep: Task[] = [];
    for (const t of tasks) {
      try {
        encode(t.payload, 'x', []);
        keep.push(t);
      } catch (e) {
        const what = t.job instanceof ApplyJob ? 'args' : t.units === 1 && t.kind !== K_CHUNK && t.kind !== K_STAR ? `item ${t.index} of the iterable` : `the chunk from item ${t.index} of the iterable`;
        const msg = String((e as Error)?.message ?? e).replace(/^x: /, '').replace(/\bat msg/, `at ${what}`);
        const C = e instanceof TypeError ? TypeError : Error;
        this.#settleTask(t, false, new C(`${this.#what}: cannot send a task: ${msg}`, { cause: e }));
      }
    }
    this.#requeue(keep);
    if (keep.length) this.#queueDispatch();
  }

  /** Reads a worker's messages while it owes results (or has not said it is ready). */
  async #pump(w: Slot): Promise<void> {
    w.reading = true;
    const link = w.handle.link;
    try {
      while (!w.gone && (!w.ready || w.outstanding.length > 0)) {
        const msg = (await link.recv()) as unknown[];
        this.#onMessage(w, msg);
        if (this.#queue.length > 0) this.#dispatch();
      }
    } catch (e) {
      w.reading = false;
      void this.#lost(w, e);
      return;
    }
    w.reading = false;
  }

  #onMessage(w: Slot, msg: unknown[]): void {
    switch (msg[0]) {
      case M_RESULTS: {
        for (let i = 1; i < msg.length; i += 3) {
          const t = w.outstanding.shift();
          if (!t) break; // terminated meanwhile: nothing waits for these
          w.outCost -= t.cost;
          this.#batchAnswered(w);
          const us = msg[i + 2] as number;
          const per = us / t.units;
          const old = this.#unitCost[t.fn]!;
          this.#unitCost[t.fn] = old === old ? old * 0.75 + per * 0.25 : per;
          const status = msg[i];
          if (status === S_OK) this.#settleTask(t, true, msg[i + 1]);
          else this.#settleTask(t, false, status === S_ERROR ? errorFromRecord(msg[i + 1] as ErrorRecord, w.handle.label) : msg[i + 1]);
        }
        if (w.outstanding.length === 0) {
          w.outCost = 0; // no drift
          this.#tuneSpin();
        }
        return;
      }
      case M_READY:
        w.ready = true;
        w.handle.ready();
        this.#bootFailures = 0;
        return;
      case M_INIT_ERROR: {
        const cause = errorFromRecord(msg[1] as ErrorRecord, w.handle.label);
        this.#break(new ProcessError(`${this.#what}: the initializer failed in worker ${w.handle.label}: ${cause.name}: ${cause.message}`, { cause }));
        return;
      }
      case M_BATCH_ERROR: {
        const cause = errorFromRecord(msg[1] as ErrorRecord, w.handle.label);
        const n = w.batches.shift() ?? 0;
        for (let i = 0; i < n; i++) {
          const t = w.outstanding.shift();
          if (!t) break;
          w.outCost -= t.cost;
          this.#settleTask(t, false, new Error(`${this.#what}: worker ${w.handle.label} could not read this task: ${cause.message}`, { cause }));
        }
        return;
      }
      case M_DYING:
        w.dying = { running: msg[1] === 1 };
        return;
      default:
        throw new Error(`${this.#what}: unknown message from worker ${w.handle.label} (a bug of multiproc)`);
    }
  }

  #batchAnswered(w: Slot): void {
    // batches holds counts; the head one shrinks as its results come in.
    const left = w.batches.shift();
    if (left !== undefined && left > 1) w.batches.unshift(left - 1);
  }

  #settleTask(t: Task, ok: boolean, value: unknown): void {
    if (ok) t.job.resolveTask(t, value);
    else t.job.rejectTask(t, value);
    this.#taskEnded();
  }

  #taskEnded(): void {
    if (--this.#pending === 0) {
      this.#updateKeepAlive();
      this.#maybeFinish();
    }
  }

  #updateKeepAlive(): void {
    const want = this.#pending > 0 || (this.#joinResolve !== null && this.#workers.length > 0);
    if (want === this.#keepAliveOn) return;
    this.#keepAliveOn = want;
    if (want) this.#keepAlive.ref();
    else this.#keepAlive.unref();
  }

  // ---- workers ----

  #startWorker(): void {
    const handle = this.#launcher.start();
    handle.link.setSpin(this.#spin ? POOL_SPIN_MS : 0);
    const w = new Slot(handle);
    this.#workers.push(w);
    try {
      handle.link.start({ ...this.#init, name: handle.label });
    } catch (e) {
      // Checked in the constructor; a handle in initargs closed since then.
      handle.kill();
      w.unusable = true;
      void this.#lost(w, e);
      this.#break(new ProcessError(`${this.#what}: cannot start a worker: ${(e as Error).message}`, { cause: e }));
      return;
    }
    // An idle worker that dies is noticed (and replaced) without keeping this process alive. A
    // busy one is handled by its reader, which takes the results the worker committed before it
    // ended, then the end of the stream that ended() puts behind them; should that not come (the
    // put cannot finish), the exit settles it a moment later anyway.
    w.cancelExitWatch = handle.onExit(() => {
      if (!w.reading) void this.#lost(w);
      else {
        handle.link.ended();
        setTimeout(() => void this.#lost(w), EOF_GRACE_MS).unref();
      }
    }, false);
    void this.#pump(w);
  }

  /** A worker has ended or its connection failed: settle what it held, replace it if needed. */
  async #lost(w: Slot, err?: unknown): Promise<void> {
    if (w.gone) return;
    w.gone = true;
    w.cancelExitWatch();
    const h = w.handle;
    if (h.exitCode() === null && err !== undefined && !(err instanceof EOFError) && !w.stopping) {
      h.kill(); // a connection we cannot read any more: the worker is of no use
    }
    const code = h.exitCode() ?? (await this.#exitOf(h));
    h.release();
    const i = this.#workers.indexOf(w);
    if (i >= 0) this.#workers.splice(i, 1);
    const tasks = w.outstanding.drain();
    w.outCost = 0;
    if (tasks.length > 0) this.#settleLost(w, tasks, code, err);
    if (!w.ready && !w.stopping && this.#state !== 'terminate' && !this.#broken) {
      if (++this.#bootFailures >= BOOT_FAILURES) {
        this.#break(new ProcessError(`${this.#what}: ${BOOT_FAILURES} workers in a row ended before they were ready (the last ${h.label} with ${this.#launcher.describeExit(code)}); see their output above`));
      }
    }
    if (this.#wantsWorkers()) {
      try {
        this.#startWorker();
      } catch (e) {
        // No process or thread can be started (out of fds, of processes...): the work cannot go on.
        this.#break(new ProcessError(`${this.#what}: cannot start a worker to replace ${h.label}: ${(e as Error).message}`, { cause: e }));
      }
    }
    this.#updateKeepAlive();
    this.#checkJoined();
    if (this.#queue.length > 0) this.#dispatch();
  }

  /**
   * The exit code of a worker whose connection ended: it is ending. One that lingers (it closed its
   * end of the pipe but runs on) is killed after a grace period: it is of no use to the pool.
   */
  #exitOf(h: PoolWorkerHandle): Promise<number> {
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => h.kill(), EXIT_GRACE_MS);
      h.onExit((code) => {
        clearTimeout(timer);
        resolve(code);
      }, true);
    });
  }

  /** The tasks a lost worker held: the one it was running fails, those it never started go back to the queue. */
  #settleLost(w: Slot, tasks: Task[], code: number, err: unknown): void {
    const how = this.#launcher.describeExit(code);
    const name = w.handle.label;
    let failed: Task[];
    let requeue: Task[];
    if (w.dying) {
      failed = w.dying.running ? tasks.slice(0, 1) : [];
      requeue = tasks.slice(failed.length);
    } else if (!w.ready || w.unusable) {
      failed = [];
      requeue = tasks; // it never got to them
    } else {
      // Killed from outside (SIGKILL, a crash): it was running the first and may have finished
      // others whose results it had not sent yet; none of them can safely run twice.
      failed = tasks;
      requeue = [];
    }
    const detail = err !== undefined && !(err instanceof EOFError) ? ` (${(err as Error).message})` : '';
    for (const t of failed) {
      const msg = failed.length === 1
        ? `${this.#what} worker ${name} ended with ${how} while running this task${detail}; the pool started a replacement`
        : `${this.#what} worker ${name} ended with ${how} while this task was assigned to it (running, or queued behind the one that was)${detail}; the pool started a replacement`;
      this.#settleTask(t, false, Object.assign(new ProcessError(msg), { exitCode: code }));
    }
    this.#requeue(requeue);
  }

  #wantsWorkers(): boolean {
    if (this.#broken || this.#state === 'terminate') return false;
    if (this.#state === 'close' && this.#pending === 0 && this.#feeding === 0) return false;
    return this.#workers.filter((w) => !w.stopping).length < this.#size;
  }

  // ---- ending ----

  /** No more tasks may be submitted; the workers exit once the work submitted is done. */
  close(): void {
    if (this.#state !== 'run') return;
    this.#state = 'close';
    for (const it of this.#imaps) it._unthrottle();
    this.#maybeFinish();
  }

  /** After close(), once all work is done: workers are told to exit (the end of their task stream). */
  #maybeFinish(): void {
    if (this.#state !== 'close' || this.#pending > 0 || this.#feeding > 0) return;
    for (const w of this.#workers) {
      if (w.stopping) continue;
      w.stopping = true;
      w.handle.link.close();
    }
    this.#checkJoined();
  }

  /**
   * Ends the workers now (SIGTERM, then SIGKILL after a grace period) and rejects every unfinished
   * result. Resolves once they have ended.
   */
  terminate(): Promise<void> {
    if (this.#state !== 'terminate') {
      this.#state = 'terminate';
      this.#failAll(terminatedError(this.#what));
      for (const w of this.#workers) {
        w.stopping = true;
        w.handle.stop();
      }
      if (this.#workers.length > 0) {
        setTimeout(() => {
          for (const w of this.#workers) w.handle.kill();
        }, TERMINATE_GRACE_MS).unref();
      }
    }
    return this.join();
  }

  /** Rejects every unfinished result with `error`. */
  #failAll(error: Error): void {
    for (const it of this.#imaps) it._fail(error);
    this.#imaps.clear();
    for (const r of this.#collecting) r._reject(error);
    const tasks = this.#queue.drain();
    for (const w of this.#workers) {
      tasks.push(...w.outstanding.drain());
      w.outCost = 0;
    }
    for (const t of tasks) t.job.rejectTask(t, error);
    this.#pending = 0;
    this.#updateKeepAlive();
  }

  /** The pool cannot go on (the initializer fails, workers cannot start): it ends, every result rejects. */
  #break(error: Error): void {
    if (this.#broken || this.#state === 'terminate') return;
    this.#broken = error;
    this.#failAll(error);
    for (const w of this.#workers) {
      w.stopping = true;
      w.handle.stop();
    }
  }

  /** Resolves once the work is done and every worker has ended; call close() or terminate() first. */
  join(): Promise<void> {
    if (this.#state === 'run' && !this.#broken) {
      return Promise.reject(new Error(`${this.#what}.join: the pool is still running; call close() or terminate() first`));
    }
    if (!this.#joined) {
      this.#joined = new Promise((resolve) => {
        this.#joinResolve = resolve;
      });
      this.#updateKeepAlive();
      this.#checkJoined();
    }
    return this.#joined;
  }

  #checkJoined(): void {
    if (!this.#joinResolve || this.#workers.length > 0 || this.#pending > 0) return;
    // After terminate() an input still being read (it may never end) is not waited for.
    if (this.#feeding > 0 && this.#state !== 'terminate' && !this.#broken) return;
    const resolve = this.#joinResolve;
    this.#joinResolve = null;
    clearInterval(this.#keepAlive);
    resolve();
  }

  /** @internal What the scheduler holds now, for diagnosing a pool that seems stuck. */
  [Symbol.for('multiproc.poolState')](): unknown {
    return {
      state: this.#state, broken: this.#broken?.message ?? null, queued: this.#queue.length, pending: this.#pending,
      feeding: this.#feeding, joining: this.#joinResolve !== null,
      workers: this.#workers.map((w) => ({
        label: w.handle.label, exitCode: w.handle.exitCode(), ready: w.ready, reading: w.reading, gone: w.gone,
        stopping: w.stopping, unusable: w.unusable, outstanding: w.outstanding.length, outCost: w.outCost, assigned: w.assigned,
      })),
    };
  }

  /** Python's `with Pool() as p:` ends with terminate(): so does `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.terminate();
  }
}

// As in Python ("pool objects cannot be passed between processes or pickled"): a pool belongs to
// the process that made it; sending one would otherwise arrive as an empty object.
registerReducer<Pool, never>({
  type: 'Pool',
  cls: Pool,
  reduce: (p) => {
    throw new TypeError(`${p instanceof ThreadPool ? 'ThreadPool' : 'Pool'} objects cannot be sent to another process; pass the data and make the pool where it is used`);
  },
  rebuild: () => {
    throw new TypeError('a Pool cannot be rebuilt in another process');
  },
});

/** Python's multiprocessing.pool.ThreadPool: the same API, the workers are worker_threads. */
export class ThreadPool extends Pool {
  static override [kLauncher]: PoolLauncher = threadLauncher;
}

function terminatedError(what: string): Error {
  return new Error(`${what}.terminate: the pool was terminated before this task finished`);
}

/** A chunk (a fresh slice: dense, plain) of numbers as DenseNumbers (see PACK_MIN in pool-protocol.ts); other chunks as they are. */
function packChunk(chunk: unknown[]): unknown[] | DenseNumbers {
  if (chunk.length < PACK_MIN) return chunk;
  for (let i = 0; i < chunk.length; i++) if (typeof chunk[i] !== 'number') return chunk;
  return new DenseNumbers(chunk as number[]);
}

/** Whether `iterable` is async; throws if it is neither kind. */
function checkInput(where: string, iterable: unknown): boolean {
  if (iterable !== null && iterable !== undefined) {
    if (typeof (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return true;
    if (typeof (iterable as Iterable<unknown>)[Symbol.iterator] === 'function') return false;
  }
  throw new TypeError(`${where}: expected an iterable or an async iterable, got ${iterable === null ? 'null' : typeof iterable}`);
}
