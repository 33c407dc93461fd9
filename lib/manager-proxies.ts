// The proxy classes of SyncManager's types (Python's DictProxy, ListProxy, AcquirerProxy…). A
// small module of its own: every child process loads it, so that proxies in its args rebuild.
import { BaseProxy, registerProxyKind } from './manager-client.js';
import type { WaitOptions } from './manager-objects.js';

/** Proxy of a manager dict (Python's DictProxy): `get(k)` is `d[k]` (KeyError if missing), `get(k, dflt)` is `d.get(k, dflt)`. */
export class DictProxy<K = any, V = any> extends BaseProxy {
  get(key: K, ...dflt: [V?]): Promise<V> { return this._callMethod('get', [key, ...dflt]); }
  set(key: K, value: V): Promise<void> { return this._callMethod('set', [key, value]); }
  delete(key: K): Promise<void> { return this._callMethod('delete', [key]); }
  has(key: K): Promise<boolean> { return this._callMethod('has', [key]); }
  keys(): Promise<K[]> { return this._callMethod('keys'); }
  values(): Promise<V[]> { return this._callMethod('values'); }
  items(): Promise<[K, V][]> { return this._callMethod('items'); }
  len(): Promise<number> { return this._callMethod('len'); }
  copy(): Promise<Map<K, V>> { return this._callMethod('copy'); }
  pop(key: K, ...dflt: [V?]): Promise<V> { return this._callMethod('pop', [key, ...dflt]); }
  popitem(): Promise<[K, V]> { return this._callMethod('popitem'); }
  setdefault(key: K, dflt: V | null = null): Promise<V> { return this._callMethod('setdefault', [key, dflt]); }
  update(other: Map<K, V> | Record<string, V> | [K, V][]): Promise<void> { return this._callMethod('update', [other]); }
  clear(): Promise<void> { return this._callMethod('clear'); }
}

/** Proxy of a manager list (Python's ListProxy); indices may be negative, as in Python. */
export class ListProxy<T = any> extends BaseProxy {
  append(x: T): Promise<void> { return this._callMethod('append', [x]); }
  extend(xs: Iterable<T>): Promise<void> { return this._callMethod('extend', [[...xs]]); }
  get(i: number): Promise<T> { return this._callMethod('get', [i]); }
  set(i: number, x: T): Promise<void> { return this._callMethod('set', [i, x]); }
  delete(i: number): Promise<void> { return this._callMethod('delete', [i]); }
  pop(i?: number): Promise<T> { return this._callMethod('pop', i === undefined ? [] : [i]); }
  insert(i: number, x: T): Promise<void> { return this._callMethod('insert', [i, x]); }
  remove(x: T): Promise<void> { return this._callMethod('remove', [x]); }
  index(x: T, start?: number, end?: number): Promise<number> { return this._callMethod('index', [x, start, end]); }
  count(x: T): Promise<number> { return this._callMethod('count', [x]); }
  len(): Promise<number> { return this._callMethod('len'); }
  slice(a?: number | null, b?: number | null): Promise<T[]> { return this._callMethod('slice', [a, b]); }
  copy(): Promise<T[]> { return this._callMethod('copy'); }
  reverse(): Promise<void> { return this._callMethod('reverse'); }
  sort(opts: { reverse?: boolean } = {}): Promise<void> { return this._callMethod('sort', [opts]); }
  clear(): Promise<void> { return this._callMethod('clear'); }
}

/** Proxy of a Namespace: `await ns.get('x')`, `await ns.set('x', v)`. */
export class NamespaceProxy extends BaseProxy {
  get(name: string): Promise<any> { return this._callMethod('get', [name]); }
  set(name: string, value: unknown): Promise<void> { return this._callMethod('set', [name, value]); }
  delete(name: string): Promise<void> { return this._callMethod('delete', [name]); }
  has(name: string): Promise<boolean> { return this._callMethod('has', [name]); }
  toObject(): Promise<Record<string, any>> { return this._callMethod('toObject'); }
}

/** Proxy of a manager Queue; a timed-out get rejects with `Empty`, a put with `Full`, as the local Queue. */
export class QueueProxy<T = any> extends BaseProxy {
  put(obj: T, opts?: WaitOptions): Promise<void> { return this._callMethod('put', [obj, opts]); }
  putNowait(obj: T): Promise<void> { return this._callMethod('putNowait', [obj]); }
  get(opts?: WaitOptions): Promise<T> { return this._callMethod('get', [opts]); }
  getNowait(): Promise<T> { return this._callMethod('getNowait'); }
  qsize(): Promise<number> { return this._callMethod('qsize'); }
  empty(): Promise<boolean> { return this._callMethod('empty'); }
  full(): Promise<boolean> { return this._callMethod('full'); }
}

export class JoinableQueueProxy<T = any> extends QueueProxy<T> {
  taskDone(): Promise<void> { return this._callMethod('taskDone'); }
  join(): Promise<void> { return this._callMethod('join'); }
}

/** Proxy of a Lock or RLock (an RLock is owned by the process whose proxy acquired it). */
export class AcquirerProxy extends BaseProxy {
  acquire(opts?: WaitOptions): Promise<boolean> { return this._callMethod('acquire', [opts]); }
  release(): Promise<void> { return this._callMethod('release'); }
}

export class LockProxy extends AcquirerProxy {
  locked(): Promise<boolean> { return this._callMethod('locked'); }
}

export class SemaphoreProxy extends AcquirerProxy {
  override release(n = 1): Promise<void> { return this._callMethod('release', [n]); }
  getValue(): Promise<number> { return this._callMethod('getValue'); }
}

export class ConditionProxy extends AcquirerProxy {
  wait(timeoutMs?: number | null): Promise<boolean> { return this._callMethod('wait', [timeoutMs]); }
  notify(n = 1): Promise<void> { return this._callMethod('notify', [n]); }
  notifyAll(): Promise<void> { return this._callMethod('notifyAll'); }
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
}

export class EventProxy extends BaseProxy {
  isSet(): Promise<boolean> { return this._callMethod('isSet'); }
  set(): Promise<void> { return this._callMethod('set'); }
  clear(): Promise<void> { return this._callMethod('clear'); }
  wait(timeoutMs?: number | null): Promise<boolean> { return this._callMethod('wait', [timeoutMs]); }
}

export class BarrierProxy extends BaseProxy {
  wait(timeoutMs?: number | null): Promise<number> { return this._callMethod('wait', timeoutMs === undefined ? [] : [timeoutMs]); }
  reset(): Promise<void> { return this._callMethod('reset'); }
  abort(): Promise<void> { return this._callMethod('abort'); }
  get parties(): Promise<number> { return this._callMethod('parties'); }
  get nWaiting(): Promise<number> { return this._callMethod('nWaiting'); }
  get broken(): Promise<boolean> { return this._callMethod('broken'); }
}

/** Proxy of a manager Value: `await v.get()`, `await v.set(x)`, `await v.value`. */
export class ValueProxy<T = any> extends BaseProxy {
  get(): Promise<T> { return this._callMethod('get'); }
  set(value: T): Promise<void> { return this._callMethod('set', [value]); }
  get value(): Promise<T> { return this.get(); }
}

/** Proxy of a manager Array (Python's array.array in the server). */
export class ArrayProxy<T extends number | bigint = number> extends BaseProxy {
  len(): Promise<number> { return this._callMethod('len'); }
  get(i: number): Promise<T> { return this._callMethod('get', [i]); }
  set(i: number, v: T): Promise<void> { return this._callMethod('set', [i, v]); }
  toArray(): Promise<T[]> { return this._callMethod('toArray'); }
  get length(): Promise<number> { return this.len(); }
}

for (const cls of [DictProxy, ListProxy, NamespaceProxy, QueueProxy, JoinableQueueProxy, AcquirerProxy, LockProxy, SemaphoreProxy, ConditionProxy, EventProxy, BarrierProxy, ValueProxy, ArrayProxy]) {
  registerProxyKind(cls.name, cls);
}
