// A manager's lifetime: its server dies with its owner (no orphan), shutdown and dispose, a server
// killed mid-call gives a clear error (never a hang), and references: nothing leaks in the server.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EOFError, Manager, Pipe, Process } from '../../lib/index.js';
import { root, runNode, runNodeOk } from '../helpers/child.js';
import { join } from 'node:path';

const TARGETS = join(root, 'test', 'fixtures', 'manager-targets.mjs');

/** A process that ended and was reaped has no /proc entry (ours are reaped by libuv, orphans by init). */
const alive = (pid: number) => existsSync(`/proc/${pid}`);

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the server dies with its owner', () => {
  for (const how of ['exits without shutdown', 'is killed with SIGKILL', 'throws']) {
    it(`when the owner ${how}`, async () => {
      const child = runNode(`
        import { Manager } from LIB;
        const m = await Manager();
        const d = await m.dict();
        await d.set('k', 1);
        console.log((await m._serverInfo()).pid);
        ${how === 'exits without shutdown' ? '' : how === 'throws' ? "throw new Error('owner fails');" : 'setInterval(() => {}, 1000);'}
      `);
      let pid = 0;
      await new Promise<void>((resolve) => {
        child.proc.stdout!.on('data', (d) => {
          pid = Number(String(d).trim());
          if (pid) resolve();
        });
        void child.done.then(() => resolve());
      });
      expect(pid).toBeGreaterThan(0);
      if (how === 'is killed with SIGKILL') child.proc.kill('SIGKILL');
      await child.done;
      await until(() => !alive(pid), `the manager process ${pid} to end`);
    });
  }
});

describe('shutdown', () => {
  it('ends the server process; later calls fail clearly; shutdown is idempotent; asyncDispose shuts down', async () => {
    const m = await Manager();
    const { pid } = await m._serverInfo();
    const d = await m.dict();
    await d.set('a', 1);
    await m.shutdown();
    expect(alive(pid)).toBe(false);
    await m.shutdown();
    await expect(m.dict()).rejects.toThrow(/^SyncManager\.dict: the manager at @multiproc-manager-\S+ was shut down$/);
    const e = await d.get('a').catch((x) => x);
    expect(e.message).toMatch(/^dict\.get: cannot reach the manager server at @multiproc-manager-\S+: it is not running: it ended or was shut down \(ECONNREFUSED\)$/);
    const m2 = await Manager();
    const pid2 = (await m2._serverInfo()).pid;
    await m2[Symbol.asyncDispose]();
    expect(alive(pid2)).toBe(false);
  });

  it('a manager that was never started says so', async () => {
    const { SyncManager } = await import('../../lib/index.js');
    const m = new SyncManager();
    await expect(m.dict()).rejects.toThrow(/SyncManager\.dict: the manager is not running: call start\(\) or connect\(\) first/);
    await m.shutdown(); // nothing to do
  });
});

describe('a server killed mid-call', () => {
  it('rejects the pending calls with a clear error, here and in a child process; no hang', async () => {
    const m = await Manager();
    const { pid } = await m._serverInfo();
    const q = await m.Queue();
    const pending = q.get(); // waits in the server
    const ready = await m.Event();
    const [here, there] = Pipe();
    const child = new Process({
      target: async (q: any, ready: any, conn: any) => {
        await ready.set();
        try {
          await q.get();
          conn.send('got an item?');
        } catch (e) {
          conn.send(`${(e as Error).name}: ${(e as Error).message}`);
        }
      },
      args: [q, ready, there],
    });
    child.start();
    there.close();
    await ready.wait();
    await new Promise((r) => setTimeout(r, 300)); // its get is parked in the server by now
    process.kill(pid, 'SIGKILL');
    const e = await pending.catch((x) => x);
    expect(e).toBeInstanceOf(EOFError);
    expect(e.message).toMatch(/^Queue\.get: the manager server at @multiproc-manager-\S+ is gone: its connection closed with 1 call pending\. The server process ended \(killed, crashed, or shut down\); start a new manager$/);
    expect(await here.recv()).toMatch(/^EOFError: Queue\.get: the manager server at \S+ is gone: its connection closed with 1 call pending/);
    await child.join();
    here.close();
    await expect(q.qsize()).rejects.toThrow(/cannot reach the manager server at .*: it is not running/);
    await m.shutdown(); // the process is already gone: no hang
  });
});

describe('references', () => {
  it('objects a child process made are released when it exits; a proxy it was sent keeps its object alive', async () => {
    const m = await Manager();
    expect(await m._numberOfObjects()).toBe(0);
    const l = await m.list();
    const p = new Process({ target: { module: TARGETS, name: 'makeDictsInto' }, args: [m.address, m.authkey, l, 5] });
    p.start();
    await p.join();
    expect(p.exitCode).toBe(0);
    // The dicts live on inside the list (as proxies the server holds), the child's own references are gone.
    expect(await m._numberOfObjects()).toBe(6);
    const inner = await l.get(2);
    expect(await inner.get('i')).toBe(2);
    // A child that connects and makes objects it keeps nowhere: they go when it exits.
    const q = new Process({ target: { module: TARGETS, name: 'makeDictsInto' }, args: [m.address, m.authkey, null, 4] });
    q.start();
    await q.join();
    expect(q.exitCode).toBe(0);
    await until(async () => (await m._numberOfObjects()) === 6, "the second child's objects to be released");
    await m.shutdown();
  });

  it('garbage-collected proxies release their objects in the server', async () => {
    const out = await runNodeOk(`
      import { Manager } from LIB;
      const m = await Manager();
      let proxies = [];
      for (let i = 0; i < 50; i++) proxies.push(await m.dict({ i }));
      const before = await m._numberOfObjects();
      proxies = null;
      let after = before;
      for (let i = 0; i < 100 && after > 0; i++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 20));
        after = await m._numberOfObjects();
      }
      console.log(before, after);
      await m.shutdown();
    `, { execArgv: ['--expose-gc'] });
    expect(out.trim()).toBe('50 0');
  });

  it('a waiter of a process that died takes no item; a lock it held is released', async () => {
    const m = await Manager();
    const q = await m.Queue();
    const lock = await m.Lock();
    const ready = await m.Event();
    const p = new Process({
      target: async (q: any, lock: any, ready: any) => {
        await lock.acquire();
        await ready.set();
        await q.get(); // parked in the server when we are killed
      },
      args: [q, lock, ready],
    });
    p.start();
    await ready.wait();
    await new Promise((r) => setTimeout(r, 200)); // its get is parked by now
    p.kill();
    await p.join();
    expect(await lock.acquire({ timeout: 5000 })).toBe(true);
    await q.put('for the living');
    expect(await q.get({ timeout: 1000 })).toBe('for the living');
    await m.shutdown();
  });

  it('one proxy waiting in the server does not hold up others of the same process', async () => {
    const m = await Manager();
    const q = await m.Queue();
    const d = await m.dict();
    const waiting = q.get();
    for (let i = 0; i < 10; i++) await d.set(i, i);
    expect(await d.len()).toBe(10);
    await q.put('done');
    expect(await waiting).toBe('done');
    // Many calls in flight at once, answered each to its caller.
    const res = await Promise.all(Array.from({ length: 100 }, (_, i) => d.get(i % 10)));
    expect(res).toEqual(Array.from({ length: 100 }, (_, i) => i % 10));
    await m.shutdown();
  });
});
