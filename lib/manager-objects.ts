// The objects a SyncManager's server holds for its proxies (Python's dict, list, Namespace,
// queue.Queue and the threading primitives), as event-loop JS: a wait parks a Promise, never a thread.
import { isDeepStrictEqual } from 'node:util';
import { encode } from './codec.js';
import { BrokenBarrierError, Empty, Full } from './errors.js';

// ---- who is calling ----

/** The client connection a server call comes from: owner of locks, and whose waits end when it goes. */
export interface CallContext {
  /** Identity of the client connection (one per process and manager). */
  readonly client: object;
  /** Aborted when the client's connection drops. */
  readonly signal: AbortSignal;
}

const NO_CLIENT: CallContext = { client: {}, signal: new AbortController().signal };
let current: CallContext = NO_CLIENT;

/** Runs `fn` (a server method's synchronous part) as a call of `ctx`. */
export function asCallOf<T>(ctx: CallContext, fn: () => T): T {
  const prev = current;
  current = ctx;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** Python's exceptions by name, for errors that a proxy's caller recognises. */
export function pyError(name: 'KeyError' | 'IndexError' | 'ValueError' | 'RuntimeError' | 'AttributeError' | 'TypeError', message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

// ---- waiting ----

interface Parked<T> {
  readonly ctx: CallContext;
  wake(value: T): void;
  fail(err: unknown): void;
}

/** Options of a wait, as the local classes take them: { block = true, timeout (ms) }. */
export interface WaitOptions {
  block?: boolean;
  timeout?: number | null;
}

/** null: wait forever; 0: do not wait. */
function waitMs(opts: WaitOptions | number | null | undefined, what: string): number | null {
  if (typeof opts === 'number' || opts === null || opts === undefined) return timeoutMs(opts, what);
  if (typeof opts !== 'object') throw new TypeError(`${what}: expected options { block?, timeout? }, got ${typeof opts}`);
  if (opts.block === false) return 0;
  return timeoutMs(opts.timeout, what);
}

function timeoutMs(t: number | null | undefined, what: string): number | null {
  if (t === undefined || t === null || t === Infinity) return null;
  if (typeof t !== 'number' || Number.isNaN(t)) throw new TypeError(`${what}: the timeout must be a number of milliseconds, got ${String(t)}`);
  if (t < 0) throw pyError('ValueError', `${what}: the timeout must be a non-negative number of milliseconds, got ${t}`);
  return t;
}

/**
 * Parks the current call in `queue` until woken, timed out (then `onTimeout` gives the result
 * or the error) or abandoned by a client that went away (then it leaves the queue unserved).
 */
function park<T, P extends Parked<T>>(ctx: CallContext, queue: P[], ms: number | null, onTimeout: () => T | Error, extra?: Omit<P, keyof Parked<T>>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const leave = () => {
      const i = queue.indexOf(p);
      if (i >= 0) queue.splice(i, 1);
    };
    const done = () => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      leave();
      done();
      reject(new Error('the client went away'));
    };
    const p = {
      ...extra,
      ctx,
      wake: (v: T) => {
        done();
        resolve(v);
      },
      fail: (e: unknown) => {
        done();
        reject(e);
      },
    } as P;
    if (ms !== null) {
      timer = setTimeout(() => {
        leave();
        done();
        const r = onTimeout();
        if (r instanceof Error) reject(r);
        else resolve(r);
      }, ms);
    }
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    queue.push(p);
  });
}

// ---- dict ----

// Keys as Python sees them: equal values are the same key. Primitives are their own key; an
// array or object (a tuple-like key) is keyed by its encoding. Strings starting with NUL are
// escaped so that no string collides with an encoded key.
function keyOf(k: unknown): unknown {
  if (typeof k === 'string') return k.charCodeAt(0) === 0 ? `\0s${k}` : k;
  if (typeof k === 'object' && k !== null) return `\0o${encode(k, 'dict key').toString('latin1')}`;
  return k;
}

function fmt(k: unknown): string {
  if (typeof k === 'string') return `'${k}'`;
  if (typeof k === 'bigint') return `${k}n`;
  try {
    return JSON.stringify(k) ?? String(k);
  } catch {
    return String(k);
  }
}

type Entries = Iterable<readonly [unknown, unknown]>;

function entriesOf(init: unknown, what: string): Entries {
  if (init === undefined || init === null) return [];
  if (init instanceof Map) return init;
  if (Array.isArray(init)) {
    for (const e of init) if (!Array.isArray(e) || e.length !== 2) throw new TypeError(`${what}: an array must hold [key, value] pairs`);
    return init as [unknown, unknown][];
  }
  if (typeof init === 'object') return Object.entries(init as object);
  throw new TypeError(`${what}: expected a Map, an object or [key, value] pairs, got ${typeof init}`);
}

/** Python's dict (a Map with value-equal keys): the referent of a DictProxy. */
export class SharedDict {
  readonly #m = new Map<unknown, [unknown, unknown]>();

  constructor(init?: unknown) {
    this.update(init);
  }

  /** `d[k]`: KeyError when missing, unless a default is given (`d.get(k, default)`). */
  get(k: unknown, ...dflt: unknown[]): unknown {
    const e = this.#m.get(keyOf(k));
    if (e) return e[1];
    if (dflt.length) return dflt[0];
    throw pyError('KeyError', fmt(k));
  }
  set(k: unknown, v: unknown): void {
    const key = keyOf(k);
    const e = this.#m.get(key);
    if (e) e[1] = v;
    else this.#m.set(key, [k, v]);
  }
  /** `del d[k]`: KeyError when missing. */
  delete(k: unknown): void {
    if (!this.#m.delete(keyOf(k))) throw pyError('KeyError', fmt(k));
  }
  has(k: unknown): boolean {
    return this.#m.has(keyOf(k));
  }
  keys(): unknown[] {
    return [...this.#m.values()].map((e) => e[0]);
  }
  values(): unknown[] {
    return [...this.#m.values()].map((e) => e[1]);
  }
  items(): [unknown, unknown][] {
    return [...this.#m.values()].map((e) => [e[0], e[1]]);
  }
  len(): number {
    return this.#m.size;
  }
  /** A copy as a Map (keys keep their types). */
  copy(): Map<unknown, unknown> {
    return new Map(this.#m.values());
  }
  pop(k: unknown, ...dflt: unknown[]): unknown {
    const key = keyOf(k);
    const e = this.#m.get(key);
    if (e) {
      this.#m.delete(key);
      return e[1];
    }
    if (dflt.length) return dflt[0];
    throw pyError('KeyError', fmt(k));
  }
  /** The last inserted [key, value], removed (LIFO, as Python's). */
  popitem(): [unknown, unknown] {
    let last: unknown;
    for (const key of this.#m.keys()) last = key;
    if (this.#m.size === 0) throw pyError('KeyError', 'popitem(): dictionary is empty');
    const e = this.#m.get(last)!;
    this.#m.delete(last);
    return [e[0], e[1]];
  }
  setdefault(k: unknown, dflt: unknown = null): unknown {
    const key = keyOf(k);
    const e = this.#m.get(key);
    if (e) return e[1];
    this.#m.set(key, [k, dflt]);
    return dflt;
  }
  update(other?: unknown): void {
    for (const [k, v] of entriesOf(other, 'dict.update')) this.set(k, v);
  }
  clear(): void {
    this.#m.clear();
  }
}

// ---- list ----

function index(i: unknown, n: number, what: string): number {
  if (!Number.isInteger(i)) throw pyError('TypeError', `${what}: list indices must be integers, got ${fmt(i)}`);
  const j = (i as number) < 0 ? (i as number) + n : (i as number);
  if (j < 0 || j >= n) throw pyError('IndexError', `${what}: list index ${i} out of range (length ${n})`);
  return j;
}

/** Python's slice bounds: negatives count from the end, out of range clamps. */
function bound(i: unknown, n: number, dflt: number, what: string): number {
  if (i === undefined || i === null) return dflt;
  if (!Number.isInteger(i)) throw pyError('TypeError', `${what}: slice indices must be integers, got ${fmt(i)}`);
  const j = (i as number) < 0 ? (i as number) + n : (i as number);
  return Math.min(Math.max(j, 0), n);
}

/** Python's sort order for the values a list can hold: numbers, bigints, strings, booleans; arrays element by element. */
function compare(a: unknown, b: unknown): number {
  const num = (x: unknown) => typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean';
  if (num(a) && num(b)) {
    const x = typeof a === 'boolean' ? Number(a) : a, y = typeof b === 'boolean' ? Number(b) : b;
    return (x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0;
  }
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compare(a[i], b[i]);
      if (c) return c;
    }
    return a.length - b.length;
  }
  throw pyError('TypeError', `'<' not supported between ${typeof a} and ${typeof b}`);
}

/** Python's list: the referent of a ListProxy. Equality (index, remove, count) is by value. */
export class SharedList {
  #a: unknown[];

  constructor(init?: Iterable<unknown> | null) {
    if (init !== undefined && init !== null && typeof (init as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new TypeError(`list: expected an array or another iterable, got ${typeof init}`);
    }
    this.#a = init ? [...init] : [];
  }

  append(x: unknown): void {
    this.#a.push(x);
  }
  extend(xs: Iterable<unknown>): void {
    if (!xs || typeof (xs as Iterable<unknown>)[Symbol.iterator] !== 'function') throw new TypeError('list.extend: expected an array or another iterable');
    for (const x of xs) this.#a.push(x);
  }
  get(i: number): unknown {
    return this.#a[index(i, this.#a.length, 'list.get')];
  }
  set(i: number, v: unknown): void {
    this.#a[index(i, this.#a.length, 'list.set')] = v;
  }
  /** `del l[i]`. */
  delete(i: number): void {
    this.#a.splice(index(i, this.#a.length, 'list.delete'), 1);
  }
  pop(i = -1): unknown {
    if (this.#a.length === 0) throw pyError('IndexError', 'list.pop: pop from empty list');
    return this.#a.splice(index(i, this.#a.length, 'list.pop'), 1)[0];
  }
  insert(i: number, x: unknown): void {
    this.#a.splice(bound(i, this.#a.length, 0, 'list.insert'), 0, x);
  }
  remove(x: unknown): void {
    const i = this.#a.findIndex((y) => isDeepStrictEqual(x, y));
    if (i < 0) throw pyError('ValueError', `list.remove(x): ${fmt(x)} is not in list`);
    this.#a.splice(i, 1);
  }
  index(x: unknown, start?: number, end?: number): number {
    const n = this.#a.length;
    for (let i = bound(start, n, 0, 'list.index'), e = bound(end, n, n, 'list.index'); i < e; i++) {
      if (isDeepStrictEqual(x, this.#a[i])) return i;
    }
    throw pyError('ValueError', `list.index(x): ${fmt(x)} is not in list`);
  }
  count(x: unknown): number {
    return this.#a.reduce<number>((c, y) => c + (isDeepStrictEqual(x, y) ? 1 : 0), 0);
  }
  len(): number {
    return this.#a.length;
  }
  /** `l[a:b]` as an array. */
  slice(a?: number | null, b?: number | null): unknown[] {
    const n = this.#a.length;
    return this.#a.slice(bound(a, n, 0, 'list.slice'), bound(b, n, n, 'list.slice'));
  }
  copy(): unknown[] {
    return this.#a.slice();
  }
  reverse(): void {
    this.#a.reverse();
  }
  /** Sorts in place in Python's order (stable); `{ reverse: true }` for descending. */
  sort(opts: { reverse?: boolean } = {}): void {
    const r = opts?.reverse ? -1 : 1;
    this.#a.sort((x, y) => r * compare(x, y));
  }
  clear(): void {
    this.#a = [];
  }
}

// ---- Namespace ----

/** Python's Namespace: named attributes. */
export class SharedNamespace {
  readonly #m = new Map<string, unknown>();

  constructor(init?: Record<string, unknown> | null) {
    if (init !== undefined && init !== null && typeof init !== 'object') throw new TypeError(`Namespace: expected an object of attributes, got ${typeof init}`);
    for (const [k, v] of Object.entries(init ?? {})) this.#m.set(k, v);
  }

  get(name: string): unknown {
    if (!this.#m.has(name)) throw pyError('AttributeError', `'Namespace' object has no attribute ${fmt(name)}`);
    return this.#m.get(name);
  }
  set(name: string, v: unknown): void {
    if (typeof name !== 'string') throw new TypeError(`Namespace.set: attribute names are strings, got ${typeof name}`);
    this.#m.set(name, v);
  }
  delete(name: string): void {
    if (!this.#m.delete(name)) throw pyError('AttributeError', `'Namespace' object has no attribute ${fmt(name)}`);
  }
  has(name: string): boolean {
    return this.#m.has(name);
  }
  /** All attributes as a plain object. */
  toObject(): Record<string, unknown> {
    return Object.fromEntries(this.#m);
  }
}

// ---- Queue, JoinableQueue ----

interface Putter extends Parked<void> {
  item: unknown;
}

/** Python's queue.Queue (maxsize 0: unbounded). */
export class SharedQueue {
  // A ring of items: O(1) at both ends.
  #items: unknown[] = [];
  #head = 0;
  readonly #maxsize: number;
  readonly #getters: Parked<unknown>[] = [];
  readonly #putters: Putter[] = [];

  constructor(maxsize = 0) {
    if (!Number.isInteger(maxsize)) throw new TypeError(`Queue: maxsize must be an integer, got ${fmt(maxsize)}`);
    this.#maxsize = maxsize > 0 ? maxsize : 0;
  }

  put(item: unknown, opts?: WaitOptions): void | Promise<void> {
    const ms = waitMs(opts, 'Queue.put');
    if (this.#getters.length) {
      // Someone waits for an item: the queue is empty, hand it over.
      this.added();
      this.#getters.shift()!.wake(item);
      return;
    }
    if (!this.full()) {
      this.#push(item);
      return;
    }
    if (ms === 0) throw new Full('Queue.put: the queue is full');
    return park<void, Putter>(current, this.#putters, ms, () => new Full(`Queue.put: the queue is still full after ${ms} ms`), { item });
  }
  putNowait(item: unknown): void | Promise<void> {
    return this.put(item, { block: false });
  }
  get(opts?: WaitOptions): unknown {
    const ms = waitMs(opts, 'Queue.get');
    if (this.qsize() > 0) {
      const x = this.#shift();
      const p = this.#putters.shift();
      if (p) {
        this.#push(p.item);
        p.wake();
      }
      return x;
    }
    if (ms === 0) throw new Empty('Queue.get: the queue is empty');
    return park(current, this.#getters, ms, () => new Empty(`Queue.get: the queue is still empty after ${ms} ms`));
  }
  getNowait(): unknown {
    return this.get({ block: false });
  }
  qsize(): number {
    return this.#items.length - this.#head;
  }
  empty(): boolean {
    return this.qsize() === 0;
  }
  full(): boolean {
    return this.#maxsize > 0 && this.qsize() >= this.#maxsize;
  }

  /** @internal An item entered the queue (JoinableQueue counts it). */
  protected added(): void {}

  #push(item: unknown): void {
    this.added();
    this.#items.push(item);
  }

  #shift(): unknown {
    const x = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return x;
  }
}

/** Python's JoinableQueue: put counts a task, taskDone() finishes one, join() waits for all. */
export class SharedJoinableQueue extends SharedQueue {
  #unfinished = 0;
  readonly #joiners: Parked<void>[] = [];

  protected override added(): void {
    this.#unfinished++;
  }
  taskDone(): void {
    if (this.#unfinished <= 0) throw pyError('ValueError', 'JoinableQueue.taskDone: called more times than there were items put');
    if (--this.#unfinished === 0) for (const j of this.#joiners.splice(0)) j.wake();
  }
  join(): void | Promise<void> {
    if (this.#unfinished === 0) return;
    return park(current, this.#joiners, null, () => undefined);
  }
}

// ---- locks ----

/** Python's threading.Lock. Released for its holder when the holder's connection drops. */
export class SharedLock {
  #holder: CallContext | null = null;
  #onHolderGone: (() => void) | null = null;
  readonly #waiters: Parked<boolean>[] = [];

  acquire(opts?: WaitOptions): boolean | Promise<boolean> {
    const ms = waitMs(opts, 'Lock.acquire');
    if (!this.#holder) {
      this.#take(current);
      return true;
    }
    if (ms === 0) return false;
    return park(current, this.#waiters, ms, () => false);
  }
  release(): void {
    if (!this.#holder) throw pyError('RuntimeError', 'Lock.release: release unlocked lock');
    this.#holder.signal.removeEventListener('abort', this.#onHolderGone!);
    this.#holder = this.#onHolderGone = null;
    const next = this.#waiters.shift();
    if (next) {
      this.#take(next.ctx);
      next.wake(true);
    }
  }
  locked(): boolean {
    return this.#holder !== null;
  }

  #take(ctx: CallContext): void {
    this.#holder = ctx;
    // A holder that goes away gives the lock back, so that nobody waits for it forever.
    this.#onHolderGone = () => {
      if (this.#holder === ctx) this.release();
    };
    ctx.signal.addEventListener('abort', this.#onHolderGone, { once: true });
  }
}

/** Python's threading.RLock, owned by a client connection (a process). */
export class SharedRLock {
  #owner: object | null = null;
  #count = 0;
  #ownerSignal: AbortSignal | null = null;
  #onOwnerGone: (() => void) | null = null;
  readonly #waiters: (Parked<boolean> & { count: number })[] = [];

  acquire(opts?: WaitOptions): boolean | Promise<boolean> {
    const ms = waitMs(opts, 'RLock.acquire');
    return this.acquireAs(current, ms, 1);
  }
  release(): void {
    if (this.#owner !== current.client) throw pyError('RuntimeError', 'RLock.release: cannot release un-acquired lock');
    if (--this.#count === 0) this.#handOn();
  }

  /** @internal Acquires `count` times for `ctx` (Condition.wait restores its count). */
  acquireAs(ctx: CallContext, ms: number | null, count: number): boolean | Promise<boolean> {
    if (this.#owner === ctx.client) {
      this.#count += count;
      return true;
    }
    if (this.#owner === null) {
      this.#own(ctx, count);
      return true;
    }
    if (ms === 0) return false;
    return park(ctx, this.#waiters, ms, () => false, { count });
  }
  /** @internal Releases every level `client` holds; returns how many. */
  releaseAll(client: object): number {
    if (this.#owner !== client) throw pyError('RuntimeError', 'cannot release un-acquired lock');
    const n = this.#count;
    this.#count = 0;
    this.#handOn();
    return n;
  }
  /** @internal */
  ownedBy(client: object): boolean {
    return this.#owner === client;
  }

  #own(ctx: CallContext, count: number): void {
    this.#owner = ctx.client;
    this.#count = count;
    this.#ownerSignal = ctx.signal;
    this.#onOwnerGone = () => {
      if (this.#owner === ctx.client) {
        this.#count = 0;
        this.#handOn();
      }
    };
    ctx.signal.addEventListener('abort', this.#onOwnerGone, { once: true });
  }

  #handOn(): void {
    this.#ownerSignal?.removeEventListener('abort', this.#onOwnerGone!);
    this.#ownerSignal = this.#onOwnerGone = null;
    const next = this.#waiters.shift();
    if (next) {
      this.#own(next.ctx, next.count);
      next.wake(true);
    } else {
      this.#owner = null;
    }
  }
}

/** Python's threading.Semaphore. */
export class SharedSemaphore {
  protected value: number;
  readonly #waiters: Parked<boolean>[] = [];

  constructor(value = 1) {
    if (!Number.isInteger(value) || value < 0) throw pyError('ValueError', `Semaphore: the initial value must be an integer >= 0, got ${fmt(value)}`);
    this.value = value;
  }
  acquire(opts?: WaitOptions): boolean | Promise<boolean> {
    const ms = waitMs(opts, 'Semaphore.acquire');
    if (this.value > 0) {
      this.value--;
      return true;
    }
    if (ms === 0) return false;
    return park(current, this.#waiters, ms, () => false);
  }
  release(n = 1): void {
    if (!Number.isInteger(n) || n < 1) throw pyError('ValueError', `Semaphore.release: n must be an integer >= 1, got ${fmt(n)}`);
    for (let i = 0; i < n; i++) {
      const w = this.#waiters.shift();
      if (w) w.wake(true);
      else this.value++;
    }
  }
  getValue(): number {
    return this.value;
  }
}

/** Python's threading.BoundedSemaphore: releasing past the initial value throws. */
export class SharedBoundedSemaphore extends SharedSemaphore {
  readonly #initial: number;
  constructor(value = 1) {
    super(value);
    this.#initial = value;
  }
  override release(n = 1): void {
    if (this.value + n > this.#initial) throw pyError('ValueError', `BoundedSemaphore.release: released too many times (the initial value is ${this.#initial})`);
    super.release(n);
  }
}

/** Python's threading.Condition over its own RLock. */
export class SharedCondition {
  readonly #lock = new SharedRLock();
  readonly #waiters: Parked<boolean>[] = [];

  acquire(opts?: WaitOptions): boolean | Promise<boolean> {
    return this.#lock.acquireAs(current, waitMs(opts, 'Condition.acquire'), 1);
  }
  release(): void {
    return this.#lock.release();
  }
  /** Releases the lock, waits for a notify (true) or the timeout (false), then takes the lock back. */
  async wait(timeout?: number | null): Promise<boolean> {
    const ctx = current;
    const ms = timeoutMs(timeout, 'Condition.wait');
    if (!this.#lock.ownedBy(ctx.client)) throw pyError('RuntimeError', 'Condition.wait: cannot wait on un-acquired lock; acquire() it first');
    const count = this.#lock.releaseAll(ctx.client);
    // A client that goes away while waiting does not take the lock back.
    const notified = await park(ctx, this.#waiters, ms, () => false);
    await this.#lock.acquireAs(ctx, null, count);
    return notified;
  }
  notify(n = 1): void {
    if (!this.#lock.ownedBy(current.client)) throw pyError('RuntimeError', 'Condition.notify: cannot notify on un-acquired lock; acquire() it first');
    for (let i = 0; i < n && this.#waiters.length; i++) this.#waiters.shift()!.wake(true);
  }
  notifyAll(): void {
    this.notify(this.#waiters.length);
  }
}

/** Python's threading.Event. */
export class SharedEvent {
  #flag = false;
  readonly #waiters: Parked<boolean>[] = [];

  isSet(): boolean {
    return this.#flag;
  }
  set(): void {
    this.#flag = true;
    for (const w of this.#waiters.splice(0)) w.wake(true);
  }
  clear(): void {
    this.#flag = false;
  }
  wait(timeout?: number | null): boolean | Promise<boolean> {
    if (this.#flag) return true;
    const ms = timeoutMs(timeout, 'Event.wait');
    if (ms === 0) return false;
    return park(current, this.#waiters, ms, () => false);
  }
}

/** Python's threading.Barrier. A timeout, abort() or a failing action breaks it; reset() mends it. */
export class SharedBarrier {
  readonly #parties: number;
  readonly #timeout: number | null;
  readonly #action: (() => unknown) | null;
  #broken = false;
  #waiting: Parked<number>[] = [];

  constructor(parties: number, opts: { action?: (() => unknown) | null; timeout?: number | null } = {}) {
    if (!Number.isInteger(parties) || parties < 1) throw pyError('ValueError', `Barrier: parties must be an integer >= 1, got ${fmt(parties)}`);
    this.#parties = parties;
    this.#timeout = timeoutMs(opts.timeout, 'Barrier');
    this.#action = opts.action ?? null;
  }

  /** Resolves to this party's arrival index (0 … parties-1) once all have arrived. */
  async wait(timeout?: number | null): Promise<number> {
    if (this.#broken) throw new BrokenBarrierError('Barrier.wait: the barrier is broken; reset() it');
    const ms = timeout === undefined ? this.#timeout : timeoutMs(timeout, 'Barrier.wait');
    const index = this.#waiting.length;
    if (index + 1 < this.#parties) {
      // A waiter whose client goes away keeps its place, as a thread of Python's server would.
      const ctx: CallContext = { client: current.client, signal: new AbortController().signal };
      return park<number, Parked<number>>(ctx, this.#waiting, ms, () => {
        this.#break();
        return new BrokenBarrierError(`Barrier.wait: timed out after ${ms} ms; the barrier is now broken`);
      });
    }
    // The last party: this generation is complete (later arrivals start the next one); run the
    // action, then let everyone through.
    const ws = this.#waiting;
    this.#waiting = [];
    try {
      if (this.#action) await this.#action();
    } catch (e) {
      this.#broken = true;
      for (const w of ws) w.fail(new BrokenBarrierError('Barrier.wait: the barrier action failed; the barrier is now broken'));
      this.#break();
      throw e;
    }
    ws.forEach((w, i) => w.wake(i));
    return index;
  }
  reset(): void {
    const ws = this.#waiting;
    this.#waiting = [];
    for (const w of ws) w.fail(new BrokenBarrierError('Barrier.wait: the barrier was reset while waiting'));
    this.#broken = false;
  }
  abort(): void {
    this.#break();
  }
  get parties(): number {
    return this.#parties;
  }
  get nWaiting(): number {
    return this.#waiting.length;
  }
  get broken(): boolean {
    return this.#broken;
  }

  #break(): void {
    this.#broken = true;
    const ws = this.#waiting;
    this.#waiting = [];
    for (const w of ws) w.fail(new BrokenBarrierError('Barrier.wait: the barrier was broken (aborted, timed out, or its action failed)'));
  }
}

// ---- Value, Array ----

/** Python's manager Value: a value held in the server (the typecode is kept, not enforced, as Python does). */
export class SharedValue {
  constructor(readonly typecode: string, public value: unknown) {}
  get(): unknown {
    return this.value;
  }
  set(v: unknown): void {
    this.value = v;
  }
}

const TYPECODES: Record<string, new (n: number) => ArrayLike<number | bigint> & { [i: number]: number | bigint }> = {
  c: Uint8Array, b: Int8Array, B: Uint8Array, h: Int16Array, H: Uint16Array, i: Int32Array, I: Uint32Array,
  l: BigInt64Array, L: BigUint64Array, q: BigInt64Array, Q: BigUint64Array, f: Float32Array, d: Float64Array,
};

/** Python's manager Array (array.array): items stored as the typecode says. */
export class SharedArrayObject {
  readonly #a: ArrayLike<number | bigint> & { [i: number]: number | bigint };
  readonly #big: boolean;

  constructor(readonly typecode: string, init: number | Iterable<number | bigint>) {
    const T = TYPECODES[typecode];
    if (!T) throw pyError('ValueError', `Array: bad typecode ${fmt(typecode)} (must be one of ${Object.keys(TYPECODES).join(' ')})`);
    this.#big = T === BigInt64Array || T === BigUint64Array;
    const items = typeof init === 'number' ? null : [...init];
    this.#a = new T(items ? items.length : init as number);
    items?.forEach((x, i) => this.#store(i, x));
  }
  len(): number {
    return this.#a.length;
  }
  get(i: number): number | bigint {
    return this.#a[index(i, this.#a.length, 'Array.get')]!;
  }
  set(i: number, v: number | bigint): void {
    this.#store(index(i, this.#a.length, 'Array.set'), v);
  }
  toArray(): (number | bigint)[] {
    return Array.from(this.#a);
  }

  #store(i: number, v: number | bigint): void {
    if (this.#big) {
      if (typeof v === 'number' && Number.isInteger(v)) v = BigInt(v);
      if (typeof v !== 'bigint') throw pyError('TypeError', `Array(${fmt(this.typecode)}): an integer is required, got ${fmt(v)}`);
    } else if (typeof v !== 'number') {
      throw pyError('TypeError', `Array(${fmt(this.typecode)}): a number is required, got ${fmt(v)}`);
    }
    this.#a[i] = v;
  }
}
