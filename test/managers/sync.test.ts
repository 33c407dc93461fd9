// The …Sync twins of proxy methods: they block the thread until the server answers, share the
// process's connection with async calls in flight, and throw what the async ones reject with.
import { describe, expect, it } from 'vitest';
import { Empty, EOFError, Manager, Process, RemoteError, type SyncManager } from '../../lib/index.js';
import { useManager } from '../helpers/manager.js';

let m: SyncManager;
useManager((x) => (m = x));

describe('…Sync twins', () => {
  it('return results directly and throw RemoteError / Empty synchronously', async () => {
    const d = await m.dict<string, number>();
    d.setSync('a', 1);
    expect(d.getSync('a')).toBe(1);
    expect(d.getSync('b', 7)).toBe(7);
    expect(d.itemsSync()).toEqual([['a', 1]]);
    expect(() => d.getSync('b')).toThrow(RemoteError);
    expect(() => d.getSync('b')).toThrow(/^dict\.get: KeyError: 'b'/);
    const l = await m.list([3, 1, 2]);
    l.sortSync();
    expect(l.copySync()).toEqual([1, 2, 3]);
    const q = await m.Queue();
    expect(() => q.getSync({ timeout: 20 })).toThrow(Empty);
    const lock = await m.Lock();
    expect(lock.acquireSync()).toBe(true);
    expect(lock.acquireSync({ block: false })).toBe(false);
    lock.releaseSync();
    const c = await m.Condition();
    c.acquireSync();
    expect(c.waitForSync(() => 'ready', 10)).toBe('ready');
    c.releaseSync();
  });

  it('interleave with async calls in flight on the same connection', async () => {
    const d = await m.dict();
    const q = await m.Queue();
    const waiting = q.get(); // async, parked in the server
    const many = Array.from({ length: 20 }, (_, i) => d.set(i, i));
    expect(d.lenSync()).toBe(20); // the sets went first on the same connection
    q.putSync('x');
    expect(await waiting).toBe('x');
    await Promise.all(many);
    expect(d.getSync(19)).toBe(19);
  });

  it('work at once in a process whose proxies just arrived (the connection is made on the spot)', async () => {
    const d = await m.dict();
    const q = await m.Queue();
    const p = new Process({
      target: (q: any, d: any) => {
        d.setSync('child', q.getSync({ timeout: 10_000 }));
      },
      args: [q, d],
    });
    p.start();
    await q.put('from the parent');
    await p.join();
    expect(p.exitCode).toBe(0);
    expect(await d.get('child')).toBe('from the parent');
  });

  it('a manager with spinMs: 0 (receives sleep at once) works the same, also in a child', async () => {
    const m0 = await Manager({ spinMs: 0 });
    const d = await m0.dict();
    d.setSync('x', 1);
    await d.set('y', 2);
    const p = new Process({ target: (d: any) => d.setSync('z', d.getSync('x') + d.getSync('y')), args: [d] });
    p.start();
    await p.join();
    expect(await d.get('z')).toBe(3);
    await m0.shutdown();
    await expect(Manager({ spinMs: -1 })).rejects.toThrow(/SyncManager: spinMs must be a number of milliseconds >= 0, got -1/);
  });

  it('a server killed during a …Sync call: EOFError, no hang', async () => {
    const m2 = await Manager();
    const { pid } = await m2._serverInfo();
    const q = await m2.Queue();
    const killer = new Process({ target: (pid: number) => setTimeout(() => process.kill(pid, 'SIGKILL'), 300), args: [pid] });
    killer.start();
    let err: Error | undefined;
    try {
      q.getSync();
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(EOFError);
    expect(err!.message).toMatch(/^Queue\.get: the manager server at \S+ is gone: its connection closed with 1 call pending/);
    await killer.join();
    expect(() => q.qsizeSync()).toThrow(/not running|is gone/);
    await m2.shutdown();
  });
});
