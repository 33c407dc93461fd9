// Async waits run on waiter threads of ours: many pending acquires neither block the event loop nor
// take libuv's thread pool; a worker thread that ends with waits pending ends cleanly.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('async waits', () => {
  it('1,000 pending async acquires all complete, while fs calls on a 1-thread pool stay fast', async () => {
    const out = await runNodeOk(`
      import { Lock, Process } from LIB;
      import { promises as fs } from 'node:fs';
      const l = new Lock();
      l.acquireSync();
      let done = 0;
      const all = Array.from({ length: 1000 }, () => l.acquire({ timeout: 60000 }).then((ok) => { done++; l.release(); return ok; }));
      await new Promise((r) => setTimeout(r, 200));
      const t = performance.now();
      for (let i = 0; i < 20; i++) await fs.readFile('/proc/self/stat');
      const fsMs = performance.now() - t;
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      await new Promise((r) => setTimeout(r, 200));
      clearInterval(timer);
      const doneBefore = done;
      // Released by another process: the waiters then take turns here.
      const p = new Process({ target: (l) => { l.release(); }, args: [l] });
      p.start();
      const oks = await Promise.all(all);
      await p.join();
      console.log(JSON.stringify({ doneBefore, done, allOk: oks.every(Boolean), fsMs, ticks, code: p.exitCode }));
    `, { env: { UV_THREADPOOL_SIZE: '1' } });
    const r = JSON.parse(out);
    expect(r.doneBefore).toBe(0);
    expect(r.done).toBe(1000);
    expect(r.allOk).toBe(true);
    expect(r.fsMs).toBeLessThan(2000);
    expect(r.ticks).toBeGreaterThanOrEqual(5);
    expect(r.code).toBe(0);
  });

  it('a worker thread terminated with async waits pending ends cleanly, and the lock still works', async () => {
    const out = await runNodeOk(`
      import { Lock, Event, Pipe } from LIB;
      import { native } from ${JSON.stringify(new URL('../../dist/native.js', import.meta.url).href)};
      import { Worker } from 'node:worker_threads';
      const l = new Lock();
      const e = new Event();
      l.acquireSync();
      for (let round = 0; round < 3; round++) {
        const [a, b] = Pipe();
        a.send({ l, e });
        const w = new Worker(\`
          const { parentPort, workerData } = require('node:worker_threads');
          import(workerData.lib).then(({ Connection }) => {
            const c = new Connection(workerData.fd);
            const { l, e } = c.recvSync();
            for (let i = 0; i < 50; i++) { l.acquire(); e.wait(); }
            parentPort.postMessage('waiting');
          });
        \`, { eval: true, workerData: { lib: ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)}, fd: native.dupFd(b.fileno()) } });
        await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
        await new Promise((res) => setTimeout(res, 50));
        await w.terminate();
        a.close(); b.close();
      }
      l.release();
      const again = l.acquireSync({ timeout: 1000 });
      console.log(JSON.stringify({ again }));
    `);
    expect(JSON.parse(out)).toEqual({ again: true });
  });

  it('objects that are dropped give their fds back', async () => {
    const out = await runNodeOk(`
      import { Lock, RLock, Semaphore, Event, Condition, Barrier } from LIB;
      import { readdirSync } from 'node:fs';
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      (() => { for (let i = 0; i < 2000; i++) { const x = [new Lock(), new RLock(), new Semaphore(), new Event(), new Condition(), new Barrier(2)]; x[0].acquireSync(); x[0].release(); } })();
      const peak = fds();
      for (let i = 0; i < 10 && fds() > before + 20; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }
      console.log(JSON.stringify({ grew: peak - before, after: fds() - before }));
    `, { execArgv: ['--expose-gc'] });
    const r = JSON.parse(out);
    expect(r.grew).toBeGreaterThan(1000);
    expect(r.after).toBeLessThan(20);
  });
});
