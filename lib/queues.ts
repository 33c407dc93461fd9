// Queue, SimpleQueue, JoinableQueue (API.md, Queues): Python's multiprocessing queues over one
// shared-memory ring each (lib/queue-ring.ts); they travel to other processes like any handle.
import { Empty, Full } from './errors.js';
import { registerReducer } from './reduction.js';
import { spinOf, timeoutOf, type AcquireOptions } from './synchronize.js';
import { DEFAULT_CAPACITY, MAX_CAPACITY, Ring, RingTimeout } from './queue-ring.js';

export { DEFAULT_CAPACITY as DEFAULT_QUEUE_CAPACITY };

export interface QueueOptions {
  /** Most items the queue holds; a put waits for room beyond it. 0 (the default) or less: no limit by count. */
  maxsize?: number;
  /**
   * Bytes of the shared ring that holds the encoded items (default 1 MiB, rounded up to a power
   * of two, 1 KiB to 1 GiB). Items larger than half of it travel in a shared segment of their own.
   */
  capacityBytes?: number;
  /** How long a blocking put or get spins before it parks in the kernel, in ms (default 0.05; 0 on one CPU). */
  spinMs?: number;
}

export type SimpleQueueOptions = Omit<QueueOptions, 'maxsize'>;

/** `block: false` is `…Nowait`; `timeout` in ms (none, null or Infinity: wait as long as it takes). */
export type QueueWaitOptions = AcquireOptions;

const kAdopt = Symbol('adopt');
const kCore = Symbol('multiproc.queue');
type PutMethod = 'put' | 'putSync' | 'putNowait';
type GetMethod = 'get' | 'getSync' | 'getNowait';

/** One queue object's hold on its ring, and its name for messages. */
class Core {
  ring: Ring | null;
  /** `Class.method` for messages (the codec's and the ring's), made once: a put must not build strings. */
  readonly labels: Record<PutMethod | GetMethod, string>;
  constructor(
    readonly name: string,
    ring: Ring,
  ) {
    this.ring = ring;
    this.labels = {
      put: `${name}.put`, putSync: `${name}.putSync`, putNowait: `${name}.putNowait`,
      get: `${name}.get`, getSync: `${name}.getSync`, getNowait: `${name}.getNowait`,
    };
  }

  open(method: string): Ring {
    const ring = this.ring;
    if (!ring) throw this.closedError(method);
    return ring;
  }

  closedError(method: string): Error {
    return new Error(`${this.name}.${method}(): the queue is closed (close() was called on this ${this.name} object in this process); use an open one`);
  }

  close(): void {
    const ring = this.ring;
    if (!ring) return;
    this.ring = null;
    ring.close();
  }
}

function makeRing(name: string, options: QueueOptions | undefined, bounded: boolean): Ring {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new TypeError(`${name}: expected options like { maxsize, capacityBytes }, got ${options === null ? 'null' : typeof options}`);
  let maxsize = 0;
  if (!bounded && (options as QueueOptions | undefined)?.maxsize !== undefined) throw new TypeError(`${name}: maxsize is not an option of a ${name}, which has no limit by count; use a Queue for one`);
  if (bounded && options?.maxsize !== undefined) {
    maxsize = options.maxsize;
    if (!Number.isInteger(maxsize) || maxsize > 0x7fffffff) throw new TypeError(`${name}: maxsize must be an integer (0 or less: no limit), got ${String(maxsize)}`);
    if (maxsize < 0) maxsize = 0;
  }
  const capacity = options?.capacityBytes ?? DEFAULT_CAPACITY;
  if (!Number.isInteger(capacity) || capacity <= 0 || capacity > MAX_CAPACITY) {
    throw new RangeError(`${name}: capacityBytes must be an integer from 1 to ${MAX_CAPACITY} (1 GiB), got ${String(capacity)}`);
  }
  return Ring.create(capacity, maxsize, spinOf(name, options));
}

// ---- put and get, shared by the three classes ----

function putSyncImpl(q: Core, method: PutMethod, obj: unknown, timeout: number): void {
  const ring = q.open(method);
  const m = ring.prepare(obj, q.labels[method]);
  const r = ring.putSync(m, timeout);
  if (r !== true) throw fullError(q, ring, method, timeout, m.size, r);
}

function putImpl(q: Core, method: PutMethod, obj: unknown, options: QueueWaitOptions | undefined): Promise<void> {
  let ring: Ring, timeout: number, size: number;
  try {
    ring = q.open(method);
    timeout = timeoutOf(`${q.name}.${method}()`, options);
    if (timeout === 0) {
      putSyncImpl(q, method, obj, 0);
      return Promise.resolve();
    }
    const m = ring.prepare(obj, q.labels[method]);
    size = m.size;
    if (ring.tryPutNow(m)) return Promise.resolve();
    return ring.put(Ring.keep(m), timeout, () => q.closedError(method)).then((r) => {
      if (r !== true) throw fullError(q, ring, method, timeout, size, r);
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

function getSyncImpl(q: Core, method: GetMethod, timeout: number): unknown {
  const r = q.open(method).getSync(timeout, q.labels[method]);
  if (r instanceof RingTimeout) throw emptyError(q, method, timeout);
  return r;
}

function getImpl(q: Core, method: GetMethod, options: QueueWaitOptions | undefined): Promise<unknown> {
  try {
    const ring = q.open(method);
    const timeout = timeoutOf(`${q.name}.${method}()`, options);
    if (timeout === 0) return Promise.resolve(getSyncImpl(q, method, 0));
    if (ring.tryGetNow(q.labels[method])) {
      const v = ring.value;
      ring.value = undefined;
      return Promise.resolve(v);
    }
    return ring.get(timeout, q.labels[method], () => q.closedError(method)).then((r) => {
      if (r instanceof RingTimeout) throw emptyError(q, method, timeout);
      return r;
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

function fullError(q: Core, ring: Ring, method: string, timeout: number, size: number, r: RingTimeout): Full {
  const n = ring.qsize();
  const why = r.phase === 'fds'
    ? `the channel that carries its items' handles and large items holds all the kernel allows`
    : ring.maxsize > 0 && n >= ring.maxsize
      ? `it holds its maxsize of ${ring.maxsize} items`
      : r.phase === 'lock'
        ? 'another process holds its put lock, waiting for room'
        : `its ${ring.cap}-byte ring has no room for this ${size}-byte item`;
  if (timeout === 0) return new Full(`${q.name}.${method}(): the queue is full (${why}); get() items from it, or put() with a timeout to wait for room`);
  return new Full(`${q.name}.${method}(): the queue stayed full for ${timeout} ms (${why}); are consumers getting items?`);
}

function emptyError(q: Core, method: string, timeout: number): Empty {
  if (timeout === 0) return new Empty(`${q.name}.${method}(): the queue is empty`);
  return new Empty(`${q.name}.${method}(): no item arrived within ${timeout} ms`);
}

// ---- the classes ----

/** What the three classes share: their hold on the ring, empty() and close(). */
abstract class QueueBase {
  /** @internal */
  readonly [kCore]: Core;

  constructor(a: QueueOptions | typeof kAdopt | undefined, ring: Ring | undefined, bounded: boolean) {
    const name = new.target.name;
    this[kCore] = new Core(name, a === kAdopt ? ring! : makeRing(name, a, bounded));
  }

  /** True when the queue holds no item now. */
  empty(): boolean {
    return this[kCore].open('empty').empty();
  }

  /**
   * This process is done with the queue (Python's `close()`): its fds are closed, waits of this
   * object in flight reject, and every later call on it throws. Other processes' queues, and the
   * items in the queue, are not affected. Idempotent.
   */
  close(): void {
    this[kCore].close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A FIFO queue for any number of producers and consumers in any processes (Python's
 * `multiprocessing.Queue`). Items are structured clones; handles (Connections, locks, queues…)
 * inside them travel too. Order is kept per producer; no item is lost, duplicated or torn, also
 * when a process is killed in the middle of a put or get.
 */
export class Queue<T = unknown> extends QueueBase {
  constructor(options?: QueueOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, ring: Ring);
  constructor(a?: QueueOptions | typeof kAdopt, ring?: Ring) {
    super(a, ring, true);
  }

  /** Most items the queue holds (0: no limit by count). */
  get maxsize(): number {
    return this[kCore].open('maxsize').maxsize;
  }

  /** Bytes of its shared ring. */
  get capacityBytes(): number {
    return this[kCore].open('capacityBytes').cap;
  }

  /** Puts `obj`, waiting for room when the queue is full; rejects with `Full` if `timeout` passes first. */
  put(obj: T, options?: QueueWaitOptions): Promise<void> {
    return putImpl(this[kCore], 'put', obj, options);
  }

  /** The blocking twin of `put`: throws `Full` if `timeout` passes first. */
  putSync(obj: T, options?: QueueWaitOptions): void {
    const core = this[kCore];
    putSyncImpl(core, 'putSync', obj, options === undefined ? -1 : timeoutOf(`${core.name}.putSync()`, options));
  }

  /** Puts `obj` if there is room now, else throws `Full`. */
  putNowait(obj: T): void {
    putSyncImpl(this[kCore], 'putNowait', obj, 0);
  }

  /** Takes the next item, waiting for one; rejects with `Empty` if `timeout` passes first. */
  get(options?: QueueWaitOptions): Promise<T> {
    return getImpl(this[kCore], 'get', options) as Promise<T>;
  }

  /** The blocking twin of `get`: throws `Empty` if `timeout` passes first. */
  getSync(options?: QueueWaitOptions): T {
    const core = this[kCore];
    return getSyncImpl(core, 'getSync', options === undefined ? -1 : timeoutOf(`${core.name}.getSync()`, options)) as T;
  }

  /** Takes the next item if there is one now, else throws `Empty`. */
  getNowait(): T {
    return getSyncImpl(this[kCore], 'getNowait', 0) as T;
  }

  /** Items in the queue now (approximate while others put and get, as in Python). */
  qsize(): number {
    return this[kCore].open('qsize').qsize();
  }

  /** True when the queue holds `maxsize` items. */
  full(): boolean {
    return this[kCore].open('full').full();
  }

  override toString(): string {
    const { ring, name } = this[kCore];
    return ring ? `<${name}(maxsize=${ring.maxsize}, capacityBytes=${ring.cap}, qsize=${ring.qsize()})>` : `<${name}(closed)>`;
  }
}

/** A Queue whose consumers say when each item is processed (Python's `multiprocessing.JoinableQueue`). */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /** One item taken from the queue is processed. Throws if called more times than items were put. */
  taskDone(): void {
    const core = this[kCore];
    if (!core.open('taskDone').taskDone()) {
      throw new Error(`${core.name}.taskDone(): called more times than there were items put (Python's ValueError); call it once per item got`);
    }
  }

  /** Resolves once every item put has been got and marked done with taskDone(). */
  async join(): Promise<void> {
    const core = this[kCore];
    await core.open('join').join(-1, () => core.closedError('join'));
  }

  /** The blocking twin of `join`. */
  joinSync(): void {
    this[kCore].open('joinSync').joinSync(-1);
  }
}

/**
 * The plain queue (Python's `multiprocessing.SimpleQueue`): put, get, empty and close, no limit
 * by count. The same ring as Queue underneath.
 */
export class SimpleQueue<T = unknown> extends QueueBase {
  constructor(options?: SimpleQueueOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, ring: Ring);
  constructor(a?: SimpleQueueOptions | typeof kAdopt, ring?: Ring) {
    super(a, ring, false);
  }

  /** Puts `obj`, waiting for room in the ring if it is full. */
  put(obj: T): Promise<void> {
    return putImpl(this[kCore], 'put', obj, undefined);
  }

  putSync(obj: T): void {
    putSyncImpl(this[kCore], 'putSync', obj, -1);
  }

  /** Takes the next item, waiting for one. */
  get(): Promise<T> {
    return getImpl(this[kCore], 'get', undefined) as Promise<T>;
  }

  getSync(): T {
    return getSyncImpl(this[kCore], 'getSync', -1) as T;
  }

  override toString(): string {
    const { ring, name } = this[kCore];
    return ring ? `<${name}(capacityBytes=${ring.cap})>` : `<${name}(closed)>`;
  }
}

/** @internal The ring of a queue object (tests look inside). */
export function ringOf(q: Queue | SimpleQueue): Ring {
  return q[kCore].open('ringOf');
}

// ---- how they travel: the ring's three fds (SCM_RIGHTS; the sender keeps its own) ----

interface QueueState {
  seg: number;
  tx: number;
  rx: number;
  spinMs: number;
}

function registerQueue<Q extends Queue | SimpleQueue>(type: string, cls: abstract new (...a: never[]) => Q, make: (ring: Ring) => Q): void {
  registerReducer<Q, QueueState>({
    type,
    cls,
    reduce: (q, ctx) => {
      const ring = q[kCore].ring;
      if (!ring) throw new Error(`a closed ${q[kCore].name} cannot be sent to another process (close() was called on it in this process)`);
      const fds = ring.fds;
      return { seg: ctx.addFd(fds.seg), tx: ctx.addFd(fds.tx), rx: ctx.addFd(fds.rx), spinMs: ring.spinMs };
    },
    rebuild: (s, ctx) => make(Ring.adopt(ctx.fd(s.seg), ctx.fd(s.tx), ctx.fd(s.rx), s.spinMs)),
  });
}

registerQueue('Queue', Queue, (r) => new Queue(kAdopt, r));
registerQueue('JoinableQueue', JoinableQueue, (r) => new JoinableQueue(kAdopt, r));
registerQueue('SimpleQueue', SimpleQueue, (r) => new SimpleQueue(kAdopt, r));
