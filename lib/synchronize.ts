// Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier (API.md, Synchronization):
// words in shared memory. The uncontended paths are Atomics in JS; waits go native (native/sync.cc).
//
// Word layouts are native/sync.cc's. A lock word holds its owner's thread id (0: free),
// the next word the owner's token: set after the claim, cleared before the
// release, so that a waiter can tell a dead owner (or a reused tid) and take the lock over.
import { availableParallelism } from 'node:os';
import { native } from './native.js';
import { Segment } from './segment.js';
import { registerReducer } from './reduction.js';
import { BrokenBarrierError } from './errors.js';
import { describeTarget, loadTarget, entryUrl, type Target, type TargetDesc } from './target.js';

// Lock words (native/sync.cc): [0] owner tid (0: free), [1] owner token, [2] parked waiters,
// [3] wake sequence (parked waiters sleep on it; odd while a wake-up is on its way); an RLock
// adds [4] its recursion count (touched only by its owner).
const OWNER = 0x3fffffff;
const PARKED = 2;
const WAKE = 3;
const RLOCK_COUNT = 4;
/** int32 words of a Lock and of an RLock (for objects that embed one). */
export const LOCK_WORDS = 4;
export const RLOCK_WORDS = 5;
/** Results of the native waits (lib/native.ts). */
export const ACQUIRED = 0;
export const OWNER_DIED = 1;
export const TIMED_OUT = 2;
/** Holder records of a robust semaphore: units held by more threads than this are not recovered. */
const SEM_SLOTS = 16;

// Spinning pays only when the holder can run meanwhile.
const DEFAULT_SPIN_MS = availableParallelism() > 1 ? 0.05 : 0;

// This thread's identity as a holder (a worker thread loads its own copy of this module); read
// on first use, since it costs a /proc read.
let TID = 0;
let TOKEN = 0;
function identify(): void {
  [TID, TOKEN] = native.threadToken();
}

export interface AcquireOptions {
  /** false: do not wait (the same as timeout 0). */
  block?: boolean;
  /** Longest wait in ms; none (or null/Infinity) waits as long as it takes. */
  timeout?: number | null;
}

export interface SyncOptions {
  /** How long a contended wait spins before it parks in the kernel, in ms (default 0.05; 0 on one CPU). */
  spinMs?: number;
}

/** -1: wait without limit; 0: do not wait; else ms. */
export function timeoutOf(what: string, opts: AcquireOptions | undefined): number {
  if (opts === undefined || opts === null) return -1;
  if (typeof opts !== 'object') throw new TypeError(`${what}: expected options like { block, timeout }, got ${typeof opts}`);
  if (opts.block === false) return 0;
  return msArg(what, opts.timeout);
}

export function msArg(what: string, ms: number | null | undefined): number {
  if (ms === undefined || ms === null || ms === Infinity) return -1;
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError(`${what}: the timeout must be a number of milliseconds, got ${String(ms)}`);
  return Math.max(0, ms);
}

export function spinOf(what: string, options: SyncOptions | undefined): number {
  const ms = options?.spinMs ?? DEFAULT_SPIN_MS;
  if (typeof ms !== 'number' || !(ms >= 0)) throw new TypeError(`${what}: spinMs must be a number of milliseconds >= 0, got ${String(ms)}`);
  return ms;
}

/** Remaining ms of a wait that began at `start` with `timeout` (-1: none). */
export function remaining(timeout: number, start: number): number {
  return timeout < 0 ? -1 : Math.max(0, timeout - (performance.now() - start));
}

function warnOwnerDied(what: string): void {
  process.emitWarning(`${what} was held by a thread or process that ended without releasing it; this thread now holds it, and the data it guards may be inconsistent`, { code: 'MULTIPROC_OWNER_DIED' });
}

const kAdopt = Symbol('adopt');

/** Where an object's words are: a segment and the index of its first int32 word. */
interface Place {
  seg: Segment;
  index: number;
}

function newPlace(words: number): Place {
  return { seg: Segment.create(words * 4), index: 0 };
}

interface SyncState {
  fd: number;
  index: number;
  spinMs: number;
}

/** The reduced form shared by the classes over one place. */
function placeState(p: Place, spinMs: number, ctx: { addFd(fd: number): number }): SyncState {
  return { fd: ctx.addFd(p.seg.fd), index: p.index, spinMs };
}

function adoptPlace(s: SyncState, ctx: { fd(i: number): number }): Place {
  return { seg: Segment.adopt(ctx.fd(s.fd)), index: s.index };
}

// ---- the lock word (Lock, RLock) ----

/** The lock word at `i`: claim, release and the contended waits. */
export class LockWord {
  readonly w: Int32Array;
  readonly i: number;
  readonly buf: ArrayBuffer;
  constructor(
    readonly place: Place,
    readonly spinMs: number,
  ) {
    this.w = place.seg.words();
    this.i = place.index;
    this.buf = place.seg.buffer;
  }

  tryClaim(): boolean {
    if (TID === 0) identify();
    if (Atomics.compareExchange(this.w, this.i, 0, TID) !== 0) return false;
    this.w[this.i + 1] = TOKEN;
    return true;
  }

  owner(): number {
    return Atomics.load(this.w, this.i) & OWNER;
  }

  ownedHere(): boolean {
    if (TID === 0) identify();
    return this.owner() === TID;
  }

  /** Contended acquire, blocking: a native result code. */
  waitSync(timeout: number): number {
    return native.lockAcquire(this.buf, this.i, TID, TOKEN, timeout, this.spinMs * 1000);
  }

  /** Contended acquire on a waiter thread: resolves with a native result code. `started` gets the wait's id (for cancelWait). */
  wait(timeout: number, started?: (id: number) => void): Promise<number> {
    return new Promise((resolve) => {
      const id = native.waitAsync(0, this.buf, this.i, TID, TOKEN, 0, timeout, this.spinMs * 1000, resolve);
      started?.(id);
    });
  }

  /** Held by this very thread (tid and token): a blocking wait for it here would never end. */
  heldHere(): boolean {
    return this.ownedHere() && this.w[this.i + 1] === TOKEN;
  }

  /** Lets go; false if it was not held. */
  release(): boolean {
    const w = this.w;
    const i = this.i;
    // The token goes first (a plain store, ordered before the seq_cst exchange): whoever sees
    // the word free sees no stale token.
    w[i + 1] = 0;
    if (Atomics.exchange(w, i, 0) === 0) return false;
    // Someone parked (both sides seq_cst: a waiter counts itself, then looks at the word): wake
    // one, unless a wake-up is already on its way (the sequence is odd; the next waiter to look
    // makes it even). Waiters sleep on the sequence, which never repeats as the owner word does.
    if (Atomics.load(w, i + PARKED) > 0) {
      const seq = Atomics.load(w, i + WAKE);
      if ((seq & 1) === 0 && Atomics.compareExchange(w, i + WAKE, seq, (seq + 1) | 0) === seq) native.futexWake(this.buf, i + WAKE, 1);
    }
    return true;
  }
}

/**
 * A lock shared by processes (Python's `multiprocessing.Lock`): any thread of any process may
 * release it. A holder that dies does not deadlock the others: the next acquirer takes it over,
 * `ownerDied` says so, and a `MULTIPROC_OWNER_DIED` warning is emitted.
 */
export class Lock {
  readonly #word: LockWord;
  #ownerDied = false;

  constructor(options?: SyncOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, place: Place, spinMs: number);
  constructor(a?: SyncOptions | typeof kAdopt, place?: Place, spinMs?: number) {
    if (a === kAdopt) this.#word = new LockWord(place!, spinMs!);
    else this.#word = new LockWord(newPlace(LOCK_WORDS), spinOf('Lock', a));
  }

  /** True when the last acquire by this object took the lock over from a holder that died. */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  acquireSync(options?: AcquireOptions): boolean {
    const timeout = options === undefined ? -1 : timeoutOf('Lock.acquireSync()', options);
    if (this.#word.tryClaim()) {
      this.#ownerDied = false;
      return true;
    }
    if (timeout === 0) return false;
    return this.#got(this.#word.waitSync(timeout));
  }

  async acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = timeoutOf('Lock.acquire()', options);
    if (this.#word.tryClaim()) return this.#got(ACQUIRED);
    if (timeout === 0) return false;
    return this.#got(await this.#word.wait(timeout));
  }

  release(): void {
    if (!this.#word.release()) throw new Error('Lock.release(): the lock is not acquired (released more times than acquired)');
  }

  #got(r: number): boolean {
    if (r === TIMED_OUT) return false;
    this.#ownerDied = r === OWNER_DIED;
    if (this.#ownerDied) warnOwnerDied('a Lock');
    return true;
  }

  /** @internal The lock word, for Condition. */
  get word(): LockWord {
    return this.#word;
  }

  toString(): string {
    const o = this.#word.owner();
    return `<Lock(owner=${o === 0 ? 'None' : o})>`;
  }
}

/**
 * A reentrant lock (Python's `multiprocessing.RLock`): owned by one thread of one process, which
 * may acquire it again; only the owner may release it. Robust like `Lock`.
 */
export class RLock {
  readonly #word: LockWord;
  #ownerDied = false;

  constructor(options?: SyncOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, place: Place, spinMs: number);
  constructor(a?: SyncOptions | typeof kAdopt, place?: Place, spinMs?: number) {
    if (a === kAdopt) this.#word = new LockWord(place!, spinMs!);
    else this.#word = new LockWord(newPlace(RLOCK_WORDS), spinOf('RLock', a));
  }

  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  acquireSync(options?: AcquireOptions): boolean {
    const timeout = options === undefined ? -1 : timeoutOf('RLock.acquireSync()', options);
    if (this.#take()) return true;
    if (timeout === 0) return false;
    return this.#first(this.#word.waitSync(timeout));
  }

  async acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = options === undefined ? -1 : timeoutOf('RLock.acquire()', options);
    if (this.#take()) return true;
    if (timeout === 0) return false;
    return this.#first(await this.#word.wait(timeout));
  }

  release(): void {
    const word = this.#word;
    const w = word.w;
    const i = word.i;
    const o = Atomics.load(w, i);
    if (o !== TID || o === 0) {
      throw new Error(o === 0 ? 'RLock.release(): the lock is not acquired' : `RLock.release(): the lock is owned by thread ${o}, not by this thread (${TID || native.threadToken()[0]}); only its owner may release it`);
    }
    const c = w[i + RLOCK_COUNT] - 1;
    w[i + RLOCK_COUNT] = c;
    if (c === 0) word.release();
  }

  /** The fast paths: again by its owner, or a free lock. */
  #take(): boolean {
    if (TID === 0) identify();
    const word = this.#word;
    const w = word.w;
    const i = word.i;
    const o = Atomics.load(w, i);
    if (o === TID) {
      w[i + RLOCK_COUNT]++;
      return true;
    }
    if (o !== 0 || Atomics.compareExchange(w, i, 0, TID) !== 0) return false;
    w[i + 1] = TOKEN;
    w[i + RLOCK_COUNT] = 1;
    this.#ownerDied = false;
    return true;
  }

  /** @internal Recursion level held by this thread (0 if it does not own the lock). */
  get count(): number {
    return this.#word.ownedHere() ? this.#word.w[this.#word.i + RLOCK_COUNT] : 0;
  }

  /** @internal */
  get word(): LockWord {
    return this.#word;
  }

  #first(r: number): boolean {
    if (r < 0 || r === TIMED_OUT) return false;
    this.#word.w[this.#word.i + RLOCK_COUNT] = 1;
    this.#ownerDied = r === OWNER_DIED;
    if (this.#ownerDied) warnOwnerDied('an RLock');
    return true;
  }

  toString(): string {
    const o = this.#word.owner();
    return `<RLock(${o === 0 ? 'None' : o}, ${o === 0 ? 0 : this.#word.w[this.#word.i + RLOCK_COUNT]})>`;
  }
}

// ---- semaphores ----

export interface SemaphoreOptions extends SyncOptions {
  /**
   * Record which thread holds each unit, so that units held by a process that dies come back
   * (default true). Turn it off for a semaphore used as a counter, where one process acquires
   * and another releases: there a dead acquirer holds nothing to give back.
   */
  robust?: boolean;
}

// Words: [0] count, [1] parked waiters, [2] the bound (0: none), [3] robust (1/0), [4..] holder records.
const SEM_BASE = 4;

/** A counting semaphore shared by processes (Python's `multiprocessing.Semaphore`). */
export class Semaphore {
  readonly #place: Place;
  readonly #w: Int32Array;
  readonly #i: number;
  readonly #spinMs: number;
  #ownerDied = false;

  constructor(value?: number, options?: SemaphoreOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, place: Place, spinMs: number);
  constructor(a: number | typeof kAdopt = 1, b?: SemaphoreOptions | Place, spinMs?: number) {
    if (a === kAdopt) {
      this.#place = b as Place;
      this.#spinMs = spinMs!;
    } else {
      const name = new.target.name;
      if (!Number.isInteger(a) || a < 0 || a > 0x7fffffff) throw new RangeError(`${name}: the initial value must be an integer >= 0, got ${String(a)}`);
      const options = b as SemaphoreOptions | undefined;
      const robust = options?.robust ?? true;
      this.#place = newPlace(SEM_BASE + 2 * SEM_SLOTS);
      this.#spinMs = spinOf(name, options);
      const w = this.#place.seg.words();
      w[0] = a;
      w[2] = new.target === BoundedSemaphore ? a : 0;
      w[3] = robust ? 1 : 0;
    }
    this.#w = this.#place.seg.words();
    this.#i = this.#place.index;
  }

  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  getValue(): number {
    return Atomics.load(this.#w, this.#i);
  }

  acquireSync(options?: AcquireOptions): boolean {
    const timeout = timeoutOf(`${this.constructor.name}.acquireSync()`, options);
    if (this.#tryTake()) return this.#got(ACQUIRED);
    if (timeout === 0) return this.#recoverAndTry();
    return this.#got(native.semAcquire(this.#place.seg.buffer, this.#i, TID, TOKEN, this.#slots(), timeout, this.#spinMs * 1000));
  }

  async acquire(options?: AcquireOptions): Promise<boolean> {
    const timeout = timeoutOf(`${this.constructor.name}.acquire()`, options);
    if (this.#tryTake()) return this.#got(ACQUIRED);
    if (timeout === 0) return this.#recoverAndTry();
    const r = await new Promise<number>((resolve) =>
      native.waitAsync(1, this.#place.seg.buffer, this.#i, TID, TOKEN, this.#slots(), timeout, this.#spinMs * 1000, resolve),
    );
    return this.#got(r);
  }

  release(): void {
    const w = this.#w;
    const i = this.#i;
    const bound = w[i + 2];
    if (bound > 0) {
      for (let c = Atomics.load(w, i); ; ) {
        if (c >= bound) throw new Error(`${this.constructor.name}.release(): released more times than acquired (the value would exceed its initial ${bound})`);
        const seen = Atomics.compareExchange(w, i, c, c + 1);
        if (seen === c) break;
        c = seen;
      }
    } else {
      Atomics.add(w, i, 1);
    }
    // After the count went up, so that a recovery never sees neither the record nor the unit.
    this.#unrecord();
    if (Atomics.load(w, i + 1) > 0) native.futexWake(this.#place.seg.buffer, i, 1);
  }

  #slots(): number {
    return this.#w[this.#i + 3] ? SEM_SLOTS : 0;
  }

  #tryTake(): boolean {
    if (TID === 0) identify();
    const w = this.#w;
    const i = this.#i;
    for (let c = Atomics.load(w, i); c > 0; ) {
      const seen = Atomics.compareExchange(w, i, c, c - 1);
      if (seen === c) {
        this.#record();
        return true;
      }
      c = seen;
    }
    return false;
  }

  /** A non-blocking acquire that found nothing: units of dead holders may come back. */
  #recoverAndTry(): boolean {
    if (this.#slots() && native.semRecover(this.#place.seg.buffer, this.#i, SEM_SLOTS) && this.#tryTake()) return this.#got(OWNER_DIED);
    return false;
  }

  #record(): void {
    if (!this.#w[this.#i + 3]) return;
    const w = this.#w;
    for (let k = this.#i + SEM_BASE; k < this.#i + SEM_BASE + 2 * SEM_SLOTS; k += 2) {
      if (w[k] === 0 && Atomics.compareExchange(w, k, 0, TID) === 0) {
        Atomics.store(w, k + 1, TOKEN);
        return;
      }
    }
  }

  #unrecord(): void {
    if (!this.#w[this.#i + 3]) return;
    if (TID === 0) identify();
    const w = this.#w;
    for (let k = this.#i + SEM_BASE; k < this.#i + SEM_BASE + 2 * SEM_SLOTS; k += 2) {
      if (w[k] === TID) {
        Atomics.store(w, k + 1, 0);
        Atomics.store(w, k, 0);
        return;
      }
    }
  }

  #got(r: number): boolean {
    if (r === TIMED_OUT) return false;
    this.#ownerDied = r === OWNER_DIED;
    if (this.#ownerDied) warnOwnerDied(`a unit of a ${this.constructor.name}`);
    return true;
  }

  /** @internal */
  get place(): Place {
    return this.#place;
  }

  /** @internal */
  get spinMs(): number {
    return this.#spinMs;
  }

  toString(): string {
    return `<${this.constructor.name}(value=${this.getValue()})>`;
  }
}

/** A semaphore whose release past its initial value throws (Python's `BoundedSemaphore`). */
export class BoundedSemaphore extends Semaphore {}

// ---- Event ----

/** A flag processes can wait for (Python's `multiprocessing.Event`). Words: [0] flag, [1] parked waiters. */
export class Event {
  readonly #place: Place;
  readonly #w: Int32Array;
  readonly #spinMs: number;

  constructor(options?: SyncOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, place: Place, spinMs: number);
  constructor(a?: SyncOptions | typeof kAdopt, place?: Place, spinMs?: number) {
    this.#place = a === kAdopt ? place! : newPlace(2);
    this.#spinMs = a === kAdopt ? spinMs! : spinOf('Event', a);
    this.#w = this.#place.seg.words();
  }

  // Word [0]: the flag in bit 0, and in the bits above it a count of set()s that found it clear;
  // word [1]: parked waiters. A waiter waits while [0] keeps the value it saw, and only such a
  // set() changes a clear event's word (clear() of a clear event leaves it as it is): so a waiter
  // that sees the word change knows it was set, even if clear() came right after, before it woke
  // or looked. Python's Event, whose wait() returns True once notified, behaves so.

  isSet(): boolean {
    return (Atomics.load(this.#w, this.#place.index) & 1) === 1;
  }

  set(): void {
    const w = this.#w;
    const i = this.#place.index;
    for (;;) {
      const v = Atomics.load(w, i);
      if (v & 1) return; // set already: its waiters were woken by that set()
      // Store, then look for waiters (both seq_cst): a waiter announces itself, then looks at the word.
      if (Atomics.compareExchange(w, i, v, ((v + 2) & ~1) | 1) === v) break;
    }
    if (Atomics.load(w, i + 1) > 0) native.futexWake(this.#place.seg.buffer, i, 0x7fffffff);
  }

  clear(): void {
    const w = this.#w;
    const i = this.#place.index;
    for (;;) {
      const v = Atomics.load(w, i);
      if ((v & 1) === 0 || Atomics.compareExchange(w, i, v, v & ~1) === v) return;
    }
  }

  waitSync(timeoutMs?: number | null): boolean {
    const v = Atomics.load(this.#w, this.#place.index);
    if (v & 1) return true;
    const t = msArg('Event.waitSync()', timeoutMs);
    if (t !== 0) native.waitWhile(this.#place.seg.buffer, this.#place.index, v, t, this.#spinMs * 1000);
    return Atomics.load(this.#w, this.#place.index) !== v;
  }

  async wait(timeoutMs?: number | null): Promise<boolean> {
    const v = Atomics.load(this.#w, this.#place.index);
    if (v & 1) return true;
    const t = msArg('Event.wait()', timeoutMs);
    if (t !== 0) await new Promise((resolve) => native.waitAsync(2, this.#place.seg.buffer, this.#place.index, v, 0, 0, t, this.#spinMs * 1000, resolve));
    return Atomics.load(this.#w, this.#place.index) !== v;
  }

  /** @internal */
  get place(): Place {
    return this.#place;
  }
  /** @internal */
  get spinMs(): number {
    return this.#spinMs;
  }

  toString(): string {
    return `<Event(${this.isSet() ? 'set' : 'unset'})>`;
  }
}

// ---- Condition ----

type AnyLock = Lock | RLock;

// Words: [0] sequence (bumped by each notify), [1] parked waiters, [2] sleepers, [3] wake-ups granted.
// Sleepers and grants change only under the condition's lock; a notified waiter takes a grant
// once it holds the lock again, so notify(n) wakes n of the threads waiting when it was called.

/** A condition variable shared by processes (Python's `multiprocessing.Condition`). */
export class Condition {
  readonly #place: Place;
  readonly #w: Int32Array;
  readonly #lock: AnyLock;
  readonly #spinMs: number;

  constructor(lock?: AnyLock | null, options?: SyncOptions);
  /** @internal */
  constructor(adopt: typeof kAdopt, place: Place, spinMs: number, lock: AnyLock);
  constructor(a?: AnyLock | null | typeof kAdopt, b?: SyncOptions | Place, spinMs?: number, lock?: AnyLock) {
    if (a === kAdopt) {
      this.#place = b as Place;
      this.#spinMs = spinMs!;
      this.#lock = lock!;
    } else {
      if (a !== undefined && a !== null && !(a instanceof Lock) && !(a instanceof RLock)) throw new TypeError('Condition: lock must be a Lock or RLock of multiproc');
      this.#spinMs = spinOf('Condition', b as SyncOptions | undefined);
      this.#lock = a ?? new RLock({ spinMs: this.#spinMs });
      this.#place = newPlace(4);
    }
    this.#w = this.#place.seg.words();
  }

  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }
  acquireSync(options?: AcquireOptions): boolean {
    return this.#lock.acquireSync(options);
  }
  release(): void {
    this.#lock.release();
  }

  /** Releases the lock, waits for a notify (or the timeout), takes the lock again. False on timeout. */
  async wait(timeoutMs?: number | null): Promise<boolean> {
    const t = msArg('Condition.wait()', timeoutMs);
    const saved = this.#sleep('wait');
    const i = this.#place.index;
    const start = performance.now();
    let seq = saved.seq;
    for (;;) {
      const left = remaining(t, start);
      if (left !== 0) await new Promise((resolve) => native.waitAsync(2, this.#place.seg.buffer, i, seq, 0, 0, left, this.#spinMs * 1000, resolve));
      await this.#lock.acquire();
      const r = this.#wake(saved.count, remaining(t, start) === 0);
      if (r !== undefined) return r;
      seq = this.#relax();
    }
  }

  /** The blocking twin of `wait`. */
  waitSync(timeoutMs?: number | null): boolean {
    const t = msArg('Condition.waitSync()', timeoutMs);
    const saved = this.#sleep('waitSync');
    const i = this.#place.index;
    const start = performance.now();
    let seq = saved.seq;
    for (;;) {
      const left = remaining(t, start);
      if (left !== 0) native.waitWhile(this.#place.seg.buffer, i, seq, left, this.#spinMs * 1000);
      this.#lock.acquireSync();
      const r = this.#wake(saved.count, remaining(t, start) === 0);
      if (r !== undefined) return r;
      seq = this.#relax();
    }
  }

  /** Waits until `predicate()` is truthy (called with the lock held); returns its last value. */
  async waitFor<T>(predicate: () => T | Promise<T>, timeoutMs?: number | null): Promise<T> {
    const t = msArg('Condition.waitFor()', timeoutMs);
    const start = performance.now();
    let result = await predicate();
    while (!result) {
      const left = remaining(t, start);
      if (left === 0) break;
      await this.wait(left < 0 ? null : left);
      result = await predicate();
    }
    return result;
  }

  waitForSync<T>(predicate: () => T, timeoutMs?: number | null): T {
    const t = msArg('Condition.waitForSync()', timeoutMs);
    const start = performance.now();
    let result = predicate();
    while (!result) {
      const left = remaining(t, start);
      if (left === 0) break;
      this.waitSync(left < 0 ? null : left);
      result = predicate();
    }
    return result;
  }

  /** Wakes up to `n` of the processes/threads waiting now. The caller must hold the lock. */
  notify(n = 1): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`Condition.notify(): n must be an integer >= 0, got ${String(n)}`);
    this.#mustHold('notify');
    const w = this.#w;
    const i = this.#place.index;
    const k = Math.min(n, w[i + 2] - w[i + 3]);
    if (k <= 0) return;
    Atomics.add(w, i + 3, k);
    Atomics.add(w, i, 1);
    if (Atomics.load(w, i + 1) > 0) native.futexWake(this.#place.seg.buffer, i, k);
  }

  notifyAll(): void {
    this.#mustHold('notifyAll');
    this.notify(this.#w[this.#place.index + 2]);
  }

  #mustHold(method: string): void {
    const word = this.#lock.word;
    if (!word.ownedHere()) throw new Error(`Condition.${method}(): the condition's lock is not held by this thread; acquire it first`);
  }

  /** Becomes a sleeper and lets the lock go entirely (an RLock at every level). */
  #sleep(method: string): { seq: number; count: number } {
    this.#mustHold(method);
    const w = this.#w;
    const i = this.#place.index;
    w[i + 2]++;
    const seq = Atomics.load(w, i);
    const count = this.#lock instanceof RLock ? this.#lock.count : 1;
    const word = this.#lock.word;
    if (this.#lock instanceof RLock) word.w[word.i + RLOCK_COUNT] = 0;
    word.release();
    return { seq, count };
  }

  /** Holding the lock again: true if notified, false on timeout, undefined to wait on. */
  #wake(count: number, timedOut: boolean): boolean | undefined {
    const w = this.#w;
    const i = this.#place.index;
    let r: boolean | undefined;
    if (w[i + 3] > 0) r = true;
    else if (timedOut) r = false;
    if (r === undefined) return undefined;
    if (r) w[i + 3]--;
    w[i + 2]--;
    if (this.#lock instanceof RLock) {
      const word = this.#lock.word;
      word.w[word.i + RLOCK_COUNT] = count;
    }
    return r;
  }

  /** Not notified yet: lets the lock go again; the sequence to wait on. */
  #relax(): number {
    const seq = Atomics.load(this.#w, this.#place.index);
    this.#lock.release();
    return seq;
  }

  /** @internal */
  get parts(): { place: Place; spinMs: number; lock: AnyLock } {
    return { place: this.#place, spinMs: this.#spinMs, lock: this.#lock };
  }

  toString(): string {
    return `<Condition(${this.#lock}, ${this.#w[this.#place.index + 2]})>`;
  }
}

// ---- Barrier ----

export interface BarrierOptions extends SyncOptions {
  /** Run by one of the parties (the last to arrive) when all have arrived, before any is released. */
  action?: Target;
  /** Default timeout of `wait()`, ms. */
  timeout?: number | null;
}

// Words: [0] state, [1] parties waiting. Python's threading.Barrier, over a shared Condition.
const FILLING = 0;
const DRAINING = 1;
const RESETTING = -1;
const BROKEN = -2;

/** A barrier for a fixed number of parties in any processes (Python's `multiprocessing.Barrier`). */
export class Barrier {
  readonly #place: Place;
  readonly #w: Int32Array;
  readonly #cond: Condition;
  readonly #parties: number;
  readonly #timeout: number;
  readonly #action: TargetDesc | undefined;
  #actionFn: Function | undefined;

  constructor(parties: number, options?: BarrierOptions);
  /** @internal */
  constructor(parties: number, options: BarrierOptions | undefined, adopt: typeof kAdopt, state: { place: Place; cond: Condition; timeout: number; action?: TargetDesc });
  constructor(parties: number, options?: BarrierOptions, adopt?: typeof kAdopt, state?: { place: Place; cond: Condition; timeout: number; action?: TargetDesc }) {
    if (!Number.isInteger(parties) || parties < 1) throw new RangeError(`Barrier: parties must be an integer >= 1, got ${String(parties)}`);
    this.#parties = parties;
    if (adopt === kAdopt && state) {
      this.#place = state.place;
      this.#cond = state.cond;
      this.#timeout = state.timeout;
      this.#action = state.action;
    } else {
      this.#place = newPlace(2);
      this.#cond = new Condition(new Lock(options), options);
      this.#timeout = msArg('Barrier', options?.timeout);
      if (options?.action !== undefined) {
        this.#action = describeTarget(options.action, 'Barrier action');
        if (typeof options.action === 'function') this.#actionFn = options.action;
      }
    }
    this.#w = this.#place.seg.words();
  }

  get parties(): number {
    return this.#parties;
  }

  get nWaiting(): number {
    const i = this.#place.index;
    return this.#w[i] === FILLING ? this.#w[i + 1] : 0;
  }

  get broken(): boolean {
    return this.#w[this.#place.index] === BROKEN;
  }

  /**
   * Waits until all parties have called wait(); resolves with this party's index (0 … parties-1,
   * distinct for each). Rejects with BrokenBarrierError if the barrier is broken, aborted or reset
   * while waiting, or the wait times out (which breaks it for everyone).
   */
  async wait(timeoutMs?: number | null): Promise<number> {
    const timeout = timeoutMs === undefined ? this.#timeout : msArg('Barrier.wait()', timeoutMs);
    const c = this.#cond;
    const w = this.#w;
    const i = this.#place.index;
    await c.acquire();
    try {
      // Wait for the previous round to drain or a reset to finish.
      await c.waitFor(() => w[i] !== DRAINING && w[i] !== RESETTING);
      if (w[i] === BROKEN) throw new BrokenBarrierError('Barrier.wait(): the barrier is broken; reset() it to use it again');
      const index = w[i + 1]++;
      try {
        if (index + 1 === this.#parties) {
          await this.#release();
        } else {
          const ok = await c.waitFor(() => w[i] !== FILLING, timeout < 0 ? null : timeout);
          if (!ok) {
            this.#break();
            throw new BrokenBarrierError(`Barrier.wait(): timed out after ${timeout} ms waiting for ${this.#parties} parties; the barrier is now broken`);
          }
          if (w[i] === BROKEN || w[i] === RESETTING) throw new BrokenBarrierError('Barrier.wait(): the barrier was broken, aborted or reset while waiting');
        }
        return index;
      } finally {
        w[i + 1]--;
        // The last one out ends the draining (or resetting) phase.
        if (w[i + 1] === 0 && (w[i] === RESETTING || w[i] === DRAINING)) {
          w[i] = FILLING;
          c.notifyAll();
        }
      }
    } finally {
      c.release();
    }
  }

  /** Back to the empty state; parties waiting now get BrokenBarrierError. */
  reset(): void {
    this.#locked(() => {
      const i = this.#place.index;
      if (this.#w[i + 1] > 0) {
        if (this.#w[i] === FILLING || this.#w[i] === BROKEN) this.#w[i] = RESETTING;
      } else {
        this.#w[i] = FILLING;
      }
      this.#cond.notifyAll();
    });
  }

  /** Breaks the barrier: waiting and future wait() calls reject with BrokenBarrierError until reset(). */
  abort(): void {
    this.#locked(() => this.#break());
  }

  #locked(fn: () => void): void {
    this.#cond.acquireSync();
    try {
      fn();
    } finally {
      this.#cond.release();
    }
  }

  #break(): void {
    this.#w[this.#place.index] = BROKEN;
    this.#cond.notifyAll();
  }

  async #release(): Promise<void> {
    try {
      if (this.#action) {
        this.#actionFn ??= await loadTarget(this.#action, entryUrl());
        await this.#actionFn();
      }
      this.#w[this.#place.index] = DRAINING;
      this.#cond.notifyAll();
    } catch (e) {
      this.#break();
      throw e;
    }
  }

  /** @internal */
  get parts(): { place: Place; cond: Condition; timeout: number; action?: TargetDesc } {
    return { place: this.#place, cond: this.#cond, timeout: this.#timeout, action: this.#action };
  }

  toString(): string {
    return `<Barrier(parties=${this.#parties}, waiting=${this.nWaiting}${this.broken ? ', broken' : ''})>`;
  }
}

// ---- how they travel ----

function registerPlaced<T extends object>(type: string, cls: abstract new (...a: never[]) => T, get: (o: T) => { place: Place; spinMs: number }, make: (p: Place, spinMs: number) => T): void {
  registerReducer<T, SyncState>({
    type,
    cls,
    reduce: (o, ctx) => {
      const { place, spinMs } = get(o);
      return placeState(place, spinMs, ctx);
    },
    rebuild: (s, ctx) => make(adoptPlace(s, ctx), s.spinMs),
  });
}

registerPlaced('Lock', Lock, (o) => ({ place: o.word.place, spinMs: o.word.spinMs }), (p, s) => new Lock(kAdopt, p, s));
registerPlaced('RLock', RLock, (o) => ({ place: o.word.place, spinMs: o.word.spinMs }), (p, s) => new RLock(kAdopt, p, s));
registerPlaced('Semaphore', Semaphore, (o) => o, (p, s) => new Semaphore(kAdopt, p, s));
registerPlaced('BoundedSemaphore', BoundedSemaphore, (o) => o, (p, s) => new BoundedSemaphore(kAdopt, p, s));
registerPlaced('Event', Event, (o) => o, (p, s) => new Event(kAdopt, p, s));

registerReducer<Condition, { own: SyncState; lock: AnyLock }>({
  type: 'Condition',
  cls: Condition,
  reduce: (c, ctx) => ({ own: placeState(c.parts.place, c.parts.spinMs, ctx), lock: c.parts.lock }),
  rebuild: (s, ctx) => new Condition(kAdopt, adoptPlace(s.own, ctx), s.own.spinMs, s.lock),
});

registerReducer<Barrier, { parties: number; own: SyncState; cond: Condition; timeout: number; action?: TargetDesc }>({
  type: 'Barrier',
  cls: Barrier,
  reduce: (b, ctx) => {
    const p = b.parts;
    return { parties: b.parties, own: placeState(p.place, 0, ctx), cond: p.cond, timeout: p.timeout, action: p.action };
  },
  rebuild: (s, ctx) => new Barrier(s.parties, undefined, kAdopt, { place: adoptPlace(s.own, ctx), cond: s.cond, timeout: s.timeout, action: s.action }),
});

/** @internal For Value/SharedArray: a lock over words of their own segment. */
export function lockAt(kind: 'Lock' | 'RLock', place: Place, spinMs = DEFAULT_SPIN_MS): Lock | RLock {
  return kind === 'Lock' ? new Lock(kAdopt, place, spinMs) : new RLock(kAdopt, place, spinMs);
}
export type { Place };
