// Every SyncManager factory: its proxy's methods here, and the same proxy used from another
// process (passed in Process args), seeing one shared object.
import { describe, expect, it } from 'vitest';
import { BrokenBarrierError, Empty, Full, Process, RemoteError, type SyncManager } from '../../lib/index.js';
import { useManager } from '../helpers/manager.js';

let m: SyncManager;
useManager((x) => (m = x));

/** Runs `target(...args)` in a child process and waits for it to exit 0. */
async function inChild(target: (...args: any[]) => unknown, ...args: unknown[]): Promise<void> {
  const p = new Process({ target, args });
  p.start();
  await p.join();
  expect(p.exitCode).toBe(0);
}

describe('dict', () => {
  it('Python dict semantics, shared with a child process', async () => {
    const d = await m.dict<unknown, unknown>({ a: 1 });
    await d.set('b', [1, 2]);
    await d.set(3, 'three');
    await d.set([1, 'x'], 'tuple key'); // value-equal keys, as Python's tuples
    expect(await d.get('a')).toBe(1);
    expect(await d.get([1, 'x'])).toBe('tuple key');
    expect(await d.get('missing', 'dflt')).toBe('dflt');
    expect(await d.has(3)).toBe(true);
    expect(await d.has('3')).toBe(false);
    expect(await d.len()).toBe(4);
    expect(await d.keys()).toEqual(['a', 'b', 3, [1, 'x']]);
    expect(await d.items()).toEqual([['a', 1], ['b', [1, 2]], [3, 'three'], [[1, 'x'], 'tuple key']]);
    await inChild(async (d) => {
      await d.set('child', (await d.get('a')) + 1);
      await d.delete('b');
    }, d);
    expect(await d.get('child')).toBe(2);
    expect(await d.has('b')).toBe(false);
    expect(await d.copy()).toEqual(new Map<unknown, unknown>([['a', 1], [3, 'three'], [[1, 'x'], 'tuple key'], ['child', 2]]));
    expect(await d.pop('a')).toBe(1);
    expect(await d.pop('a', null)).toBe(null);
    expect(await d.popitem()).toEqual(['child', 2]);
    expect(await d.setdefault('s', 5)).toBe(5);
    expect(await d.setdefault('s', 6)).toBe(5);
    await d.update({ u: 1 });
    await d.update(new Map([[7, 8]]));
    expect(await d.get(7)).toBe(8);
    await d.clear();
    expect(await d.len()).toBe(0);
    const e = await d.get('nope').catch((x) => x);
    expect(e).toBeInstanceOf(RemoteError);
    expect(e.message).toMatch(/^dict\.get: KeyError: 'nope' \(raised in the manager server at @multiproc-manager-\d+-\w+; its stack is in error\.cause\)$/);
    expect(e.cause.name).toBe('KeyError');
    expect(e.cause.stack).toMatch(/SharedDict\.get/);
    await expect(d.delete('nope')).rejects.toThrow(/KeyError: 'nope'/);
    await expect(d.popitem()).rejects.toThrow(/KeyError: popitem\(\): dictionary is empty/);
  });
});

describe('list', () => {
  it('Python list semantics, shared with a child process', async () => {
    const l = await m.list([1, 2, 3]);
    await l.append(4);
    await l.extend([5, 6]);
    expect(await l.get(-1)).toBe(6);
    await l.set(0, 10);
    await l.insert(1, 'ins');
    expect(await l.copy()).toEqual([10, 'ins', 2, 3, 4, 5, 6]);
    expect(await l.slice(1, 3)).toEqual(['ins', 2]);
    expect(await l.slice(-2)).toEqual([5, 6]);
    expect(await l.index(3)).toBe(3);
    await l.remove('ins');
    expect(await l.pop()).toBe(6);
    expect(await l.pop(0)).toBe(10);
    await inChild(async (l) => {
      await l.append({ from: 'child' });
      await l.append({ from: 'child' });
    }, l);
    expect(await l.count({ from: 'child' })).toBe(2);
    await l.remove({ from: 'child' });
    expect(await l.len()).toBe(5);
    await l.delete(-1);
    await l.reverse();
    expect(await l.copy()).toEqual([5, 4, 3, 2]);
    await l.sort();
    expect(await l.copy()).toEqual([2, 3, 4, 5]);
    await l.sort({ reverse: true });
    expect(await l.copy()).toEqual([5, 4, 3, 2]);
    await expect(l.get(10)).rejects.toThrow(/IndexError: list\.get: list index 10 out of range \(length 4\)/);
    await expect(l.remove('x')).rejects.toThrow(/ValueError: list\.remove\(x\): 'x' is not in list/);
    await expect(l.index('x')).rejects.toThrow(/ValueError/);
    await l.clear();
    await expect(l.pop()).rejects.toThrow(/IndexError: list\.pop: pop from empty list/);
  });
});

describe('Namespace, Value, Array', () => {
  it('Namespace: attributes by name', async () => {
    const ns = await m.Namespace({ x: 1 });
    await ns.set('y', 'two');
    await inChild(async (ns) => ns.set('z', (await ns.get('x')) + 2), ns);
    expect(await ns.toObject()).toEqual({ x: 1, y: 'two', z: 3 });
    expect(await ns.has('w')).toBe(false);
    await ns.delete('x');
    await expect(ns.get('x')).rejects.toThrow(/AttributeError: 'Namespace' object has no attribute 'x'/);
  });

  it('Value: get/set (and value) across processes', async () => {
    const v = await m.Value('i', 0);
    await inChild(async (v) => {
      for (let i = 0; i < 10; i++) await v.set((await v.get()) + 1);
    }, v);
    expect(await v.get()).toBe(10);
    expect(await v.value).toBe(10);
    const s = await m.Value('s', 'any value, as in Python');
    expect(await s.get()).toBe('any value, as in Python');
  });

  it('Array: typed storage by typecode', async () => {
    const a = await m.Array('i', [1, 2, 3]);
    expect(await a.len()).toBe(3);
    await a.set(0, 2 ** 31); // wraps as a C int would
    expect(await a.get(0)).toBe(-(2 ** 31));
    await inChild(async (a) => a.set(-1, 99), a);
    expect(await a.toArray()).toEqual([-(2 ** 31), 2, 99]);
    const q = await m.Array('q', 2);
    await q.set(1, 5);
    expect(await q.toArray()).toEqual([0n, 5n]);
    const f = await m.Array('d', [0.5]);
    expect(await f.get(0)).toBe(0.5);
    await expect(m.Array('z', [1])).rejects.toThrow(/ValueError: Array: bad typecode 'z'/);
    await expect(a.set(0, 'x' as never)).rejects.toThrow(/TypeError: Array\('i'\): a number is required/);
    await expect(a.get(3)).rejects.toThrow(/IndexError/);
  });
});

describe('Queue, JoinableQueue', () => {
  it('FIFO across processes; get/put with timeouts reject with Empty/Full, as the local Queue', async () => {
    const q = await m.Queue<number>(2);
    const producer = inChild(async (q) => {
      for (let i = 0; i < 5; i++) await q.put(i); // waits while the queue is full
    }, q);
    const got: number[] = [];
    while (got.length < 5) got.push(await q.get());
    await producer;
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(await q.empty()).toBe(true);
    await q.put(1);
    await q.putNowait(2);
    expect(await q.full()).toBe(true);
    expect(await q.qsize()).toBe(2);
    const full = await q.putNowait(3).catch((e) => e);
    expect(full).toBeInstanceOf(Full);
    expect(full.message).toBe('Queue.put: the queue is full');
    await expect(q.put(3, { timeout: 30 })).rejects.toThrow(Full);
    expect(await q.getNowait()).toBe(1);
    expect(await q.get({ block: false })).toBe(2);
    const empty = await q.getNowait().catch((e) => e);
    expect(empty).toBeInstanceOf(Empty);
    const t = Date.now();
    await expect(q.get({ timeout: 100 })).rejects.toThrow(/Queue\.get: the queue is still empty after 100 ms/);
    expect(Date.now() - t).toBeGreaterThanOrEqual(90);
  });

  it('JoinableQueue: join() waits for taskDone() of every item, from a worker process', async () => {
    const q = await m.JoinableQueue<string>();
    for (const x of ['a', 'b', 'c']) await q.put(x);
    const p = new Process({
      target: async (q, out) => {
        for (let i = 0; i < 3; i++) {
          await out.append((await q.get()).toUpperCase());
          await q.taskDone();
        }
      },
      args: [q, await m.list()],
    });
    p.start();
    await q.join();
    await p.join();
    expect(await q.qsize()).toBe(0);
    await expect(q.taskDone()).rejects.toThrow(/ValueError: JoinableQueue\.taskDone: called more times than there were items put/);
  });
});

describe('locks', () => {
  it('Lock: mutual exclusion across processes; release of an unlocked lock throws', async () => {
    const lock = await m.Lock();
    const log = await m.list<string>();
    expect(await lock.acquire()).toBe(true);
    expect(await lock.acquire({ block: false })).toBe(false);
    expect(await lock.acquire({ timeout: 20 })).toBe(false);
    const p = new Process({
      target: async (lock, log) => {
        await lock.acquire();
        await log.append('child in');
        await lock.release();
      },
      args: [lock, log],
    });
    p.start();
    await new Promise((r) => setTimeout(r, 200));
    await log.append('parent out');
    await lock.release();
    await p.join();
    expect(await log.copy()).toEqual(['parent out', 'child in']);
    expect(await lock.locked()).toBe(false);
    await expect(lock.release()).rejects.toThrow(/RuntimeError: Lock\.release: release unlocked lock/);
  });

  it('RLock: re-entrant for its owner process; others wait; a non-owner cannot release', async () => {
    const r = await m.RLock();
    expect(await r.acquire()).toBe(true);
    expect(await r.acquire()).toBe(true);
    await inChild(async (r) => {
      if (await r.acquire({ timeout: 50 })) throw new Error('acquired a lock held by another process');
      let err = '';
      await r.release().catch((e: Error) => (err = e.message));
      if (!/cannot release un-acquired lock/.test(err)) throw new Error(`release by a non-owner: ${err}`);
    }, r);
    await r.release();
    await r.release();
    await expect(r.release()).rejects.toThrow(/RuntimeError: RLock\.release: cannot release un-acquired lock/);
  });

  it('Semaphore and BoundedSemaphore', async () => {
    const s = await m.Semaphore(2);
    expect(await s.acquire()).toBe(true);
    expect(await s.acquire()).toBe(true);
    expect(await s.acquire({ block: false })).toBe(false);
    expect(await s.getValue()).toBe(0);
    const waiter = s.acquire();
    await inChild(async (s) => s.release(), s);
    expect(await waiter).toBe(true);
    await s.release(2);
    expect(await s.getValue()).toBe(2);
    const b = await m.BoundedSemaphore(1);
    await b.acquire();
    await b.release();
    await expect(b.release()).rejects.toThrow(/ValueError: BoundedSemaphore\.release: released too many times \(the initial value is 1\)/);
  });

  it('Condition: wait/notify across processes, waitFor with a local predicate', async () => {
    const c = await m.Condition();
    const state = await m.Value('i', 0);
    await c.acquire();
    const p = new Process({
      target: async (c, state) => {
        await c.acquire();
        await state.set(1);
        await c.notify();
        await c.release();
      },
      args: [c, state],
    });
    p.start();
    expect(await c.waitFor(async () => (await state.get()) === 1, 10_000)).toBe(true);
    expect(await c.wait(20)).toBe(false); // nobody notifies: times out, lock held again
    await c.notifyAll();
    await c.release();
    await p.join();
    await expect(c.wait(10)).rejects.toThrow(/RuntimeError: Condition\.wait: cannot wait on un-acquired lock/);
    await expect(c.notify()).rejects.toThrow(/cannot notify on un-acquired lock/);
  });

  it('Event: set in a child wakes a waiter here', async () => {
    const e = await m.Event();
    expect(await e.isSet()).toBe(false);
    expect(await e.wait(20)).toBe(false);
    const waiting = e.wait();
    await inChild(async (e) => e.set(), e);
    expect(await waiting).toBe(true);
    expect(await e.isSet()).toBe(true);
    await e.clear();
    expect(await e.isSet()).toBe(false);
  });

  it('Barrier: parties in several processes get distinct indices; the action runs in the server; abort breaks it', async () => {
    const b = await m.Barrier(3, { action: () => { globalThis.tripped = ((globalThis as any).tripped ?? 0) + 1; } });
    expect(await b.parties).toBe(3);
    const results = await m.list<number>();
    const ps = [0, 1].map(() => new Process({ target: async (b, results) => results.append(await b.wait()), args: [b, results] }));
    for (const p of ps) p.start();
    while ((await b.nWaiting) < 2) await new Promise((r) => setTimeout(r, 20));
    await results.append(await b.wait());
    for (const p of ps) await p.join();
    expect((await results.copy()).sort()).toEqual([0, 1, 2]);
    expect(await b.broken).toBe(false);
    const w = b.wait();
    await b.abort();
    await expect(w).rejects.toBeInstanceOf(BrokenBarrierError);
    expect(await b.broken).toBe(true);
    await b.reset();
    expect(await b.broken).toBe(false);
    await expect(b.wait(30)).rejects.toThrow(/Barrier\.wait: timed out after 30 ms; the barrier is now broken/);
  });
});

declare global {
  // eslint-disable-next-line no-var
  var tripped: number | undefined;
}
