// The proxy classes of SyncManager's types (Python's DictProxy, ListProxy, AcquirerProxy…): each
// method returns a Promise, and its …Sync twin blocks the thread until the server answers.
import { BaseProxy, registerProxyKind } from './manager-client.js';
import type { WaitOptions } from './manager-objects.js';

/** Proxy of a manager dict (Python's DictProxy): `get(k)` is `d[k]` (KeyError if missing), `get(k, dflt)` is `d.get(k, dflt)`. */
export class DictProxy<K = any, V = any> extends BaseProxy {
  get(key: K, ...dflt: [V?]): Promise<V> { return this._callMethod('get', [key, ...dflt]); }
  getSync(key: K, ...dflt: [V?]): V { return this._callMethodSync('get', [key, ...dflt]); }
  set(key: K, value: V): Promise<void> { return this._callMethod('set', [key, value]); }
  setSync(key: K, value: V): void { return this._callMethodSync('set', [key, value]); }
  delete(key: K): Promise<void> { return this._callMethod('delete', [key]); }
  deleteSync(key: K): void { return this._callMethodSync('delete', [key]); }
  has(key: K): Promise<boolean> { return this._callMethod('has', [key]); }
  hasSync(key: K): boolean { return this._callMethodSync('has', [key]); }
  keys(): Promise<K[]> { return this._callMethod('keys'); }
  keysSync(): K[] { return this._callMethodSync('keys'); }
  values(): Promise<V[]> { return this._callMethod('values'); }
  valuesSync(): V[] { return this._callMethodSync('values'); }
  items(): Promise<[K, V][]> { return this._callMethod('items'); }
  itemsSync(): [K, V][] { return this._callMethodSync('items'); }
  len(): Promise<number> { return this._callMethod('len'); }
  lenSync(): number { return this._callMethodSync('len'); }
  copy(): Promise<Map<K, V>> { return this._callMethod('copy'); }
  copySync(): Map<K, V> { return this._callMethodSync('copy'); }
  pop(key: K, ...dflt: [V?]): Promise<V> { return this._callMethod('pop', [key, ...dflt]); }
  popSync(key: K, ...dflt: [V?]): V { return this._callMethodSync('pop', [key, ...dflt]); }
  popitem(): Promise<[K, V]> { return this._callMethod('popitem'); }
  popitemSync(): [K, V] { return this._callMethodSync('popitem'); }
  setdefault(key: K, dflt: V | null = null): Promise<V> { return this._callMethod('setdefault', [key, dflt]); }
  setdefaultSync(key: K, dflt: V | null = null): V { return this._callMethodSync('setdefault', [key, dflt]); }
  update(other: Map<K, V> | Record<string, V> | [K, V][]): Promise<void> { return this._callMethod('update', [other]); }
  updateSync(other: Map<K, V> | Record<string, V> | [K, V][]): void { return this._callMethodSync('update', [other]); }
  clear(): Promise<void> { return this._callMethod('clear'); }
  clearSync(): void { return this._callMethodSync('clear'); }
}

/** Proxy of a manager list (Python's ListProxy); indices may be negative, as in Python. */
export class ListProxy<T = any> extends BaseProxy {
  append(x: T): Promise<void> { return this._callMethod('append', [x]); }
  appendSync(x: T): void { return this._callMethodSync('append', [x]); }
  extend(xs: Iterable<T>): Promise<void> { return this._callMethod('extend', [[...xs]]); }
  extendSync(xs: Iterable<T>): void { return this._callMethodSync('extend', [[...xs]]); }
  get(i: number): Promise<T> { return this._callMethod('get', [i]); }
  getSync(i: number): T { return this._callMethodSync('get', [i]); }
  set(i: number, x: T): Promise<void> { return this._callMethod('set', [i, x]); }
  setSync(i: number, x: T): void { return this._callMethodSync('set', [i, x]); }
  delete(i: number): Promise<void> { return this._callMethod('delete', [i]); }
  deleteSync(i: number): void { return this._callMethodSync('delete', [i]); }
  pop(i?: number): Promise<T> { return this._callMethod('pop', i === undefined ? [] : [i]); }
  popSync(i?: number): T { return this._callMethodSync('pop', i === undefined ? [] : [i]); }
  insert(i: number, x: T): Promise<void> { return this._callMethod('insert', [i, x]); }
  insertSync(i: number, x: T): void { return this._callMethodSync('insert', [i, x]); }
  remove(x: T): Promise<void> { return this._callMethod('remove', [x]); }
  removeSync(x: T): void { return this._callMethodSync('remove', [x]); }
  index(x: T, start?: number, end?: number): Promise<number> { return this._callMethod('index', [x, start, end]); }
  indexSync(x: T, start?: number, end?: number): number { return this._callMethodSync('index', [x, start, end]); }
  count(x: T): Promise<number> { return this._callMethod('count', [x]); }
  countSync(x: T): number { return this._callMethodSync('count', [x]); }
  len(): Promise<number> { return this._callMethod('len'); }
  lenSync(): number { return this._callMethodSync('len'); }
  slice(a?: number | null, b?: number | null): Promise<T[]> { return this._callMethod('slice', [a, b]); }
  sliceSync(a?: number | null, b?: number | null): T[] { return this._callMethodSync('slice', [a, b]); }
  copy(): Promise<T[]> { return this._callMethod('copy'); }
  copySync(): T[] { return this._callMethodSync('copy'); }
  reverse(): Promise<void> { return this._callMethod('reverse'); }
  reverseSync(): void { return this._callMethodSync('reverse'); }
  sort(opts: { reverse?: boolean } = {}): Promise<void> { return this._callMethod('sort', [opts]); }
  sortSync(opts: { reverse?: boolean } = {}): void { return this._callMethodSync('sort', [opts]); }
  clear(): Promise<void> { return this._callMethod('clear'); }
  clearSync(): void { return this._callMethodSync('clear'); }
}

/** Proxy of a Namespace: `await ns.get('x')`, `await ns.set('x', v)`. */
export class NamespaceProxy extends BaseProxy {
  get(name: string): Promise<any> { return this._callMethod('get', [name]); }
  getSync(name: string): any { return this._callMethodSync('get', [name]); }
  set(name: string, value: unknown): Promise<void> { return this._callMethod('set', [name, value]); }
  setSync(name: string, value: unknown): void { return this._callMethodSync('set', [name, value]); }
  delete(name: string): Promise<void> { return this._callMethod('delete', [name]); }
  deleteSync(name: string): void { return this._callMethodSync('delete', [name]); }
  has(name: string): Promise<boolean> { return this._callMethod('has', [name]); }
  hasSync(name: string): boolean { return this._callMethodSync('has', [name]); }
  toObject(): Promise<Record<string, any>> { return this._callMethod('toObject'); }
  toObjectSync(): Record<string, any> { return this._callMethodSync('toObject'); }
}

/** Proxy of a manager Queue; a timed-out get rejects with `Empty`, a put with `Full`, as the local Queue. */
export class QueueProxy<T = any> extends BaseProxy {
  put(obj: T, opts?: WaitOptions): Promise<void> { return this._callMethod('put', [obj, opts]); }
  putSync(obj: T, opts?: WaitOptions): void { return this._callMethodSync('put', [obj, opts]); }
  putNowait(obj: T): Promise<void> { return this._callMethod('putNowait', [obj]); }
  putNowaitSync(obj: T): void { return this._callMethodSync('putNowait', [obj]); }
  get(opts?: WaitOptions): Promise<T> { return this._callMethod('get', [opts]); }
  getSync(opts?: WaitOptions): T { return this._callMethodSync('get', [opts]); }
  getNowait(): Promise<T> { return this._callMethod('getNowait'); }
  getNowaitSync(): T { return this._callMethodSync('getNowait'); }
  qsize(): Promise<number> { return this._callMethod('qsize'); }
  qsizeSync(): number { return this._callMethodSync('qsize'); }
  empty(): Promise<boolean> { return this._callMethod('empty'); }
  emptySync(): boolean { return this._callMethodSync('empty'); }
  full(): Promise<boolean> { return this._callMethod('full'); }
  fullSync(): boolean { return this._callMethodSync('full'); }
}

export class JoinableQueueProxy<T = any> extends QueueProxy<T> {
  taskDone(): Promise<void> { return this._callMethod('taskDone'); }
  taskDoneSync(): void { return this._callMethodSync('taskDone'); }
  join(): Promise<void> { return this._callMethod('join'); }
  joinSync(): void { return this._callMethodSync('join'); }
}

/** Proxy of a Lock or RLock (an RLock is owned by the process whose proxy acquired it). */
export class AcquirerProxy extends BaseProxy {
  acquire(opts?: WaitOptions): Promise<boolean> { return this._callMethod('acquire', [opts]); }
  acquireSync(opts?: WaitOptions): boolean { return this._callMethodSync('acquire', [opts]); }
  release(): Promise<void> { return this._callMethod('release'); }
  releaseSync(): void { return this._callMethodSync('release'); }
}

export class LockProxy extends AcquirerProxy {
  locked(): Promise<boolean> { return this._callMethod('locked'); }
  lockedSync(): boolean { return this._callMethodSync('locked'); }
}

export class SemaphoreProxy extends AcquirerProxy {
  override release(n = 1): Promise<void> { return this._callMethod('release', [n]); }
  override releaseSync(n = 1): void { return this._callMethodSync('release', [n]); }
  getValue(): Promise<number> { return this._callMethod('getValue'); }
  getValueSync(): number { return this._callMethodSync('getValue'); }
}

export class ConditionProxy extends AcquirerProxy {
  wait(timeoutMs?: number | null): Promise<boolean> { return this._callMethod('wait', [timeoutMs]); }
  waitSync(timeoutMs?: number | null): boolean { return this._callMethodSync('wait', [timeoutMs]); }
  notify(n = 1): Promise<void> { return this._callMethod('notify', [n]); }
  notifySync(n = 1): void { return this._callMethodSync('notify', [n]); }
  notifyAll(): Promise<void> { return this._callMethod('notifyAll'); }
  notifyAllSync(): void { return this._callMethodSync('notifyAll'); }
  /** Waits until `predicate()` (evaluated here) is truthy, or the timeout passes; resolves to its last value. */
  async waitFor<R>(predicate: () => R | Promise<R>, timeoutMs?: number | null): Promise<R> {
    let result = await predicate();
    const end = timeoutMs === undefined || timeoutMs === null ? null : Date.now() + timeoutMs;
    while (!result) {
      let wait: number | null = null;
      if (end !== null) {
        wait = end - Date.now();
        if (wait <= 0) break;
      }
      await this.wait(wait);
      result = await predicate();
    }
    return result;
  }
  /** waitFor's blocking twin (the predicate must be synchronous). */
  waitForSync<R>(predicate: () => R, timeoutMs?: number | null): R {
    let result = predicate();
    const end = timeoutMs === undefined || timeoutMs === null ? null : Date.now() + timeoutMs;
    while (!result) {
      let wait: number | null = null;
      if (end !== null) {
        wait = end - Date.now();
        if (wait <= 0) break;
      }
      this.waitSync(wait);
      result = predicate();
    }
    return result;
  }
}

export class EventProxy extends BaseProxy {
  isSet(): Promise<boolean> { return this._callMethod('isSet'); }
  isSetSync(): boolean { return this._callMethodSync('isSet'); }
  set(): Promise<void> { return this._callMethod('set'); }
  setSync(): void { return this._callMethodSync('set'); }
  clear(): Promise<void> { return this._callMethod('clear'); }
  clearSync(): void { return this._callMethodSync('clear'); }
  wait(timeoutMs?: number | null): Promise<boolean> { return this._callMethod('wait', [timeoutMs]); }
  waitSync(timeoutMs?: number | null): boolean { return this._callMethodSync('wait', [timeoutMs]); }
}

export class BarrierProxy extends BaseProxy {
  wait(timeoutMs?: number | null): Promise<number> { return this._callMethod('wait', timeoutMs === undefined ? [] : [timeoutMs]); }
  waitSync(timeoutMs?: number | null): number { return this._callMethodSync('wait', timeoutMs === undefined ? [] : [timeoutMs]); }
  reset(): Promise<void> { return this._callMethod('reset'); }
  resetSync(): void { return this._callMethodSync('reset'); }
  abort(): Promise<void> { return this._callMethod('abort'); }
  abortSync(): void { return this._callMethodSync('abort'); }
  get parties(): Promise<number> { return this._callMethod('parties'); }
  get nWaiting(): Promise<number> { return this._callMethod('nWaiting'); }
  get broken(): Promise<boolean> { return this._callMethod('broken'); }
}

/** Proxy of a manager Value: `await v.get()`, `await v.set(x)`, `await v.value`. */
export class ValueProxy<T = any> extends BaseProxy {
  get(): Promise<T> { return this._callMethod('get'); }
  getSync(): T { return this._callMethodSync('get'); }
  set(value: T): Promise<void> { return this._callMethod('set', [value]); }
  setSync(value: T): void { return this._callMethodSync('set', [value]); }
  get value(): Promise<T> { return this.get(); }
}

/** Proxy of a manager Array (Python's array.array in the server). */
export class ArrayProxy<T extends number | bigint = number> extends BaseProxy {
  len(): Promise<number> { return this._callMethod('len'); }
  lenSync(): number { return this._callMethodSync('len'); }
  get(i: number): Promise<T> { return this._callMethod('get', [i]); }
  getSync(i: number): T { return this._callMethodSync('get', [i]); }
  set(i: number, v: T): Promise<void> { return this._callMethod('set', [i, v]); }
  setSync(i: number, v: T): void { return this._callMethodSync('set', [i, v]); }
  toArray(): Promise<T[]> { return this._callMethod('toArray'); }
  toArraySync(): T[] { return this._callMethodSync('toArray'); }
  get length(): Promise<number> { return this.len(); }
}

for (const cls of [DictProxy, ListProxy, NamespaceProxy, QueueProxy, JoinableQueueProxy, AcquirerProxy, LockProxy, SemaphoreProxy, ConditionProxy, EventProxy, BarrierProxy, ValueProxy, ArrayProxy]) {
  registerProxyKind(cls.name, cls);
}
