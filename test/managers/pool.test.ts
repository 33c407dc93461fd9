// manager.Pool(): a real Pool in the manager process, driven through its proxy from here and from
// other processes; task errors, close/join, terminate; it ends with its last proxy and with the
// manager. And the seed's Manager Queue + Lock example runs.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Manager, Process, RemoteError, type PoolProxy, type SyncManager } from '../../lib/index.js';
import { useManager } from '../helpers/manager.js';
import { root, runNodeOk } from '../helpers/child.js';

let m: SyncManager;
useManager((x) => (m = x));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const whereAmI = () => ({ pid: process.pid, ppid: process.ppid });

describe('manager.Pool', () => {
  it('runs apply/map/starmap/imap in workers of the manager process', async () => {
    await using pool = await m.Pool(2);
    const server = (await m._serverInfo()).pid;
    const w = await pool.apply(whereAmI);
    expect(w.ppid).toBe(server);
    expect(w.pid).not.toBe(process.pid);
    expect(await pool.apply((a: number, b: string) => `${b}${a * 2}`, [21, 'x'])).toBe('x42');
    expect(await pool.map((x: number) => x * x, [1, 2, 3, 4, 5], { chunksize: 2 })).toEqual([1, 4, 9, 16, 25]);
    expect(await pool.starmap((a: number, b: number) => a - b, [[5, 1], [9, 3]])).toEqual([4, 6]);
    async function* gen() {
      yield 1;
      yield 2;
      yield 3;
    }
    expect(await pool.imap((x: number) => x + 10, gen())).toEqual([11, 12, 13]);
    expect((await pool.imapUnordered((x: number) => x * 3, [1, 2, 3])).sort()).toEqual([3, 6, 9]);
    // Data travels by the manager's codec: Maps, BigInts, Dates.
    const r = await pool.apply((mp: Map<string, bigint>, d: Date) => new Map([...mp].map(([k, v]) => [k, v * 2n] as const)).set('y', BigInt(d.getFullYear())), [new Map([['a', 5n]]), new Date(2021, 0, 1)]);
    expect(r).toEqual(new Map([['a', 10n], ['y', 2021n]]));
    const pids = new Set((await pool.map(whereAmI, [1, 2, 3, 4, 5, 6, 7, 8], { chunksize: 1 })).map((x) => x.ppid));
    expect(pids).toEqual(new Set([server]));
  });

  it('applyAsync/mapAsync/starmapAsync give AsyncResults with callbacks', async () => {
    await using pool = await m.Pool(2);
    const seen: unknown[] = [];
    const a = pool.applyAsync((x: number) => x + 1, [1], { callback: (v) => seen.push(v) });
    const b = pool.mapAsync((x: number) => -x, [1, 2]);
    const c = pool.starmapAsync((x: number, y: number) => x * y, [[2, 3]]);
    expect(await a.get(10_000)).toBe(2);
    expect(await b.get(10_000)).toEqual([-1, -2]);
    expect(await c.get(10_000)).toEqual([6]);
    expect([a.ready(), a.successful()]).toEqual([true, true]);
    expect(seen).toEqual([2]);
    const slow = pool.applyAsync(() => new Promise((r) => setTimeout(() => r('late'), 400)));
    expect(await slow.wait(10)).toBe(false);
    expect(slow.ready()).toBe(false);
    await expect(slow.get(10)).rejects.toThrow(/not ready/);
    expect(await slow.get(10_000)).toBe('late');
    const errs: unknown[] = [];
    const bad = pool.applyAsync(() => { throw new RangeError('nope'); }, [], { errorCallback: (e) => errs.push(e) });
    expect(await bad.wait(10_000)).toBe(true);
    expect(bad.successful()).toBe(false);
    expect((errs[0] as Error).name).toBe('RangeError');
  });

  it("a task's error comes back with its name and message; the pool goes on", async () => {
    await using pool = await m.Pool(1);
    const err = await pool.apply((v: number) => {
      const e = new Error(`bad value ${v}`);
      e.name = 'ValueError';
      throw e;
    }, [7]).catch((e) => e);
    expect(err.name).toBe('ValueError');
    expect(err.message).toBe('bad value 7');
    expect(err.cause).toBeInstanceOf(RemoteError); // the manager's report, with the server-side stack in its cause
    await expect(pool.map((x: number) => { if (x === 2) throw new TypeError('two'); return x; }, [1, 2, 3])).rejects.toMatchObject({ name: 'TypeError', message: 'two' });
    expect(await pool.apply(() => 'still here')).toBe('still here');
    // A target that cannot be sent fails here, naming the call.
    await expect(pool.apply(Math.max)).rejects.toThrow(/PoolProxy\.apply: max is a native or bound function/);
  });

  it('close() then join(): submitted work finishes, new work is refused, workers end', async () => {
    const pool = await m.Pool(2);
    const pids = new Set((await pool.map(whereAmI, [1, 2, 3, 4], { chunksize: 1 })).map((x) => x.pid));
    const pending = pool.apply(() => new Promise((r) => setTimeout(() => r('done'), 300)));
    await new Promise((r) => setTimeout(r, 50));
    await pool.close();
    await expect(pool.apply(() => 1)).rejects.toThrow(/clos/i);
    await pool.join();
    expect(await pending).toBe('done');
    for (const pid of pids) await until(() => !alive(pid), `worker ${pid} to end`);
  });

  it('terminate(): unfinished work rejects, workers end at once', async () => {
    const pool = await m.Pool(1);
    const { pid } = await pool.apply(whereAmI);
    const stuck = pool.apply(() => new Promise((r) => setTimeout(r, 60_000))).catch((e) => e);
    await new Promise((r) => setTimeout(r, 100));
    await pool.terminate();
    expect(String(await stuck)).toMatch(/terminat/i);
    await pool.join();
    await until(() => !alive(pid), 'the worker to end');
  });

  it('its proxy works from another process (Process args)', async () => {
    await using pool = await m.Pool(2);
    const out = await m.list();
    const p = new Process({
      target: async (pool: PoolProxy, out: any) => {
        await out.append(await pool.map((x: number) => x * 3, [1, 2, 3]));
        await out.append((await pool.apply(() => process.ppid)) !== process.pid);
      },
      args: [pool, out],
    });
    p.start();
    await p.join();
    expect(p.exitCode).toBe(0);
    expect(await out.copy()).toEqual([[3, 6, 9], true]);
    expect(await pool.apply(() => 'ours still works')).toBe('ours still works');
  });

  it('the pool ends when its last proxy is dropped, and when the manager shuts down', async () => {
    // Dropped: a process whose proxy is garbage-collected.
    const out = await runNodeOk(`
      import { Manager } from LIB;
      const m = await Manager();
      let pool = await m.Pool(1);
      const pid = await pool.apply(() => process.pid);
      pool = null;
      const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
      for (let i = 0; i < 300 && alive(); i++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(alive(), await m._numberOfObjects());
      await m.shutdown();
    `, { execArgv: ['--expose-gc'] });
    expect(out.trim()).toBe('false 0');

    // The manager shuts down with a pool (and a task) running: the workers end with it.
    const m2 = await Manager();
    const pool = await m2.Pool(2);
    const pids = new Set((await pool.map(whereAmI, [1, 2, 3, 4], { chunksize: 1 })).map((x) => x.pid));
    void pool.apply(() => new Promise((r) => setTimeout(r, 60_000))).catch(() => {});
    await m2.shutdown();
    for (const pid of pids) await until(() => !alive(pid), `worker ${pid} to end`);
  });

  it('initializer and maxtasksperchild reach the pool', async () => {
    await using pool = await m.Pool(1, {
      initializer: (tag: string) => {
        (globalThis as any).tag = tag;
      },
      initargs: ['init-ran'],
      maxtasksperchild: 1,
    });
    const a = await pool.apply(() => [(globalThis as any).tag, process.pid]);
    const b = await pool.apply(() => [(globalThis as any).tag, process.pid]);
    expect(a[0]).toBe('init-ran');
    expect(b[0]).toBe('init-ran');
    expect(a[1]).not.toBe(b[1]); // one task per worker
  });
});

describe('examples/manager_queue_lock.mjs', () => {
  it('runs: writes A, B, C under the lock and reads them back, with a manager Pool too', async () => {
    const child = spawn(process.execPath, [join(root, 'examples', 'manager_queue_lock.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(timer);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const round = ['Put A to queue...', 'Put B to queue...', 'Put C to queue...', 'Get A from queue.', 'Get B from queue.', 'Get C from queue.'];
    expect(stdout.trim().split('\n')).toEqual([
      ...round,
      'All data is written and read',
      ...round,
      'squares from the manager pool: [ 1, 4, 9, 16 ]',
    ]);
  }, 70_000);
});
