// Lock and RLock: acquire/release semantics, timeouts, errors, and mutual exclusion across processes.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Lock', () => {
  it('acquire, non-blocking and timed acquires, release, and over-release errors', async () => {
    const out = await runNodeOk(`
      import { Lock } from LIB;
      const l = new Lock();
      const r = {};
      r.first = l.acquireSync();
      r.nonBlocking = l.acquireSync({ block: false });
      r.zero = l.acquireSync({ timeout: 0 });
      let t = performance.now();
      r.timed = l.acquireSync({ timeout: 100 });
      r.timedMs = performance.now() - t;
      t = performance.now();
      r.asyncTimed = await l.acquire({ timeout: 100 });
      r.asyncMs = performance.now() - t;
      l.release();
      try { l.release(); } catch (e) { r.over = e.message; }
      r.again = await l.acquire();
      l.release();
      try { l.acquireSync({ timeout: 'soon' }); } catch (e) { r.badTimeout = e.message; }
      console.log(JSON.stringify(r));
    `);
    const r = JSON.parse(out);
    expect(r).toMatchObject({ first: true, nonBlocking: false, zero: false, timed: false, asyncTimed: false, again: true });
    expect(r.timedMs).toBeGreaterThanOrEqual(90);
    expect(r.timedMs).toBeLessThan(3000);
    expect(r.asyncMs).toBeGreaterThanOrEqual(90);
    expect(r.over).toMatch(/Lock\.release\(\): the lock is not acquired/);
    expect(r.badTimeout).toMatch(/timeout must be a number of milliseconds/);
  });

  it('a Lock released by another process (as in Python) wakes a waiter here', async () => {
    const out = await runNodeOk(`
      import { Lock, Process } from LIB;
      const l = new Lock();
      l.acquireSync();
      const p = new Process({ target: (lock) => { setTimeout(() => lock.release(), 100); }, args: [l] });
      p.start();
      const t = performance.now();
      const got = await l.acquire({ timeout: 10000 });
      await p.join();
      console.log(JSON.stringify({ got, waited: performance.now() - t, code: p.exitCode }));
    `);
    const r = JSON.parse(out);
    expect(r.got).toBe(true);
    expect(r.code).toBe(0);
    expect(r.waited).toBeGreaterThanOrEqual(50);
  });

  it('mutual exclusion: 4 processes doing non-atomic read-modify-write under the lock lose no update', async () => {
    const out = await runNodeOk(`
      import { Lock, Process } from LIB;
      import { Segment } from ${JSON.stringify(new URL('../../dist/segment.js', import.meta.url).href)};
      const seg = Segment.create(8);
      const lock = new Lock();
      const worker = async (lock, seg, useAsync) => {
        const w = seg.words();
        for (let i = 0; i < 5000; i++) {
          if (useAsync && i % 2) await lock.acquire(); else lock.acquireSync();
          const v = w[0];
          // widen the race window: without the lock, updates would be lost
          if (i % 500 === 0) await new Promise((r) => setImmediate(r));
          w[0] = v + 1;
          lock.release();
        }
      };
      const ps = [0, 1, 2, 3].map((k) => new Process({ target: worker, args: [lock, seg, k % 2 === 1] }));
      ps.forEach((p) => p.start());
      for (const p of ps) await p.join();
      console.log(JSON.stringify({ total: seg.words()[0], codes: ps.map((p) => p.exitCode) }));
    `);
    expect(JSON.parse(out)).toEqual({ total: 20000, codes: [0, 0, 0, 0] });
  });
});

describe('RLock', () => {
  it('recursion, ownership, and errors naming the owner', async () => {
    const out = await runNodeOk(`
      import { RLock, Process, Pipe } from LIB;
      const r = new RLock();
      const res = {};
      res.a = r.acquireSync(); res.b = r.acquireSync(); res.c = await r.acquire();
      r.release(); r.release();
      // Still held once: another process cannot take it, nor release it.
      const [mine, theirs] = Pipe();
      const p = new Process({
        target: async (r, conn) => {
          const got = r.acquireSync({ timeout: 50 });
          let err = null;
          try { r.release(); } catch (e) { err = e.message; }
          conn.send({ got, err });
        },
        args: [r, theirs],
      });
      p.start();
      res.child = await mine.recv();
      await p.join();
      r.release();
      try { r.release(); } catch (e) { res.over = e.message; }
      // Free now: the child's twin can take it.
      const q = new Process({ target: (r) => { if (!r.acquireSync({ timeout: 5000 })) process.exit(3); r.release(); }, args: [r] });
      q.start(); await q.join();
      res.qcode = q.exitCode;
      console.log(JSON.stringify(res));
    `);
    const r = JSON.parse(out);
    expect(r).toMatchObject({ a: true, b: true, c: true, qcode: 0 });
    expect(r.child.got).toBe(false);
    expect(r.child.err).toMatch(/RLock\.release\(\): the lock is owned by thread \d+, not by this thread/);
    expect(r.over).toMatch(/RLock\.release\(\): the lock is not acquired/);
  });

  it('is owned per thread: a worker thread of the same process neither takes nor releases it', async () => {
    const out = await runNodeOk(`
      import { RLock, Pipe } from LIB;
      import { native } from ${JSON.stringify(new URL('../../dist/native.js', import.meta.url).href)};
      import { Worker } from 'node:worker_threads';
      const r = new RLock();
      r.acquireSync();
      const [a, b] = Pipe();
      a.send(r);
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads');
        import(workerData.lib).then(({ Connection }) => {
          const c = new Connection(workerData.fd);
          const r = c.recvSync();
          const got = r.acquireSync({ timeout: 50 });
          let err = null;
          try { r.release(); } catch (e) { err = e.message; }
          c.close();
          parentPort.postMessage({ got, err });
        });
      \`, { eval: true, workerData: { lib: ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)}, fd: native.dupFd(b.fileno()) } });
      const res = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
      await w.terminate();
      res.mainStillOwns = r.acquireSync({ block: false });
      console.log(JSON.stringify(res));
    `);
    const r = JSON.parse(out);
    expect(r.got).toBe(false);
    expect(r.err).toMatch(/owned by thread \d+, not by this thread/);
    expect(r.mainStillOwns).toBe(true);
  });
});
