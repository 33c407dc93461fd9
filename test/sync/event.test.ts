// Event and Condition across processes: set/clear/wait with timeouts, notify(n), notifyAll, waitFor.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Event', () => {
  it('set, clear, isSet, and waits that time out or are woken by another process', async () => {
    const out = await runNodeOk(`
      import { Event, Process } from LIB;
      const e = new Event();
      const r = { initial: e.isSet() };
      let t = performance.now();
      r.timedOut = await e.wait(80);
      r.ms = performance.now() - t;
      r.syncTimedOut = e.waitSync(30);
      e.set(); r.setWait = await e.wait(); r.setWaitSync = e.waitSync(0);
      e.clear(); r.cleared = e.isSet();
      const p = new Process({ target: (e) => new Promise((res) => setTimeout(() => { e.set(); res(); }, 150)), args: [e] });
      p.start();
      t = performance.now();
      r.woken = await e.wait(20000);
      r.wokenMs = performance.now() - t;
      await p.join();
      e.clear();
      const q = new Process({ target: (e) => new Promise((res) => setTimeout(() => { e.set(); res(); }, 150)), args: [e] });
      q.start();
      r.wokenSync = e.waitSync(20000);
      await q.join();
      console.log(JSON.stringify(r));
    `);
    const r = JSON.parse(out);
    expect(r).toMatchObject({ initial: false, timedOut: false, syncTimedOut: false, setWait: true, setWaitSync: true, cleared: false, woken: true, wokenSync: true });
    expect(r.ms).toBeGreaterThanOrEqual(70);
    expect(r.wokenMs).toBeLessThan(15000);
  });

  it('a set() followed at once by clear() still ends the waits it found (they return true, as in Python)', async () => {
    const out = await runNodeOk(`
      import { Event, Process, Pipe } from LIB;
      const e = new Event();
      const [rx, tx] = Pipe(false);
      // Two waiters in other processes, one blocking and one async, parked by the time of the pulse.
      const ps = [0, 1].map((k) => new Process({
        target: async (e, tx, k) => {
          tx.send('ready');
          const t = performance.now();
          const ok = k ? await e.wait(20000) : e.waitSync(20000);
          tx.send({ k, ok, ms: performance.now() - t });
        },
        args: [e, tx, k],
      }));
      ps.forEach((p) => p.start());
      tx.close();
      await rx.recv();
      await rx.recv();
      // Each is a few microseconds from its wait once it said so: give it ample time to park.
      await new Promise((r) => setTimeout(r, 300));
      // And one here, on a waiter thread.
      const here = e.wait(20000);
      await new Promise((r) => setTimeout(r, 50));
      e.set();
      e.clear();
      const r = { here: await here, isSet: e.isSet(), kids: [await rx.recv(), await rx.recv()] };
      // A clear event's clear() changes nothing: a wait after it still times out.
      e.clear();
      r.after = await e.wait(50);
      for (const p of ps) await p.join();
      console.log(JSON.stringify(r));
    `);
    const r = JSON.parse(out);
    expect(r.here).toBe(true);
    expect(r.isSet).toBe(false);
    expect(r.after).toBe(false);
    for (const k of r.kids) {
      expect(k.ok).toBe(true);
      expect(k.ms).toBeLessThan(15000);
    }
  });
});

describe('Condition', () => {
  it('notify(n) wakes n of the waiting processes, notifyAll the rest; waitFor sees the predicate', async () => {
    const out = await runNodeOk(`
      import { Condition, Process, Pipe } from LIB;
      import { Segment } from ${JSON.stringify(new URL('../../dist/segment.js', import.meta.url).href)};
      const c = new Condition();
      const seg = Segment.create(8);
      const w = seg.words();
      const [rx, tx] = Pipe(false);
      const ps = [0, 1, 2, 3].map((k) => new Process({
        target: async (c, seg, tx, k) => {
          const w = seg.words();
          if (k % 2) await c.acquire(); else c.acquireSync();
          Atomics.add(w, 0, 1);            // one more sleeper
          const ok = k % 2 ? await c.wait(20000) : c.waitSync(20000);
          c.release();
          tx.send({ k, ok });
        },
        args: [c, seg, tx, k],
      }));
      ps.forEach((p) => p.start());
      tx.close();
      // All four asleep (they counted themselves under the lock, then waited)...
      while (true) { await c.acquire(); const n = w[0]; c.release(); if (n === 4) break; await new Promise((r) => setTimeout(r, 10)); }
      await c.acquire(); c.notify(2); c.release();
      const first = [await rx.recv(), await rx.recv()];
      const early = await rx.poll(300);
      await c.acquire(); c.notifyAll(); c.release();
      const rest = [await rx.recv(), await rx.recv()];
      for (const p of ps) await p.join();
      // waitFor and timeouts, in this process
      await c.acquire();
      let t = performance.now();
      const timedOut = await c.wait(60);
      const waitMs = performance.now() - t;
      const pred = await c.waitFor(() => w[1] === 1, 60);
      c.release();
      let err = null;
      try { c.notify(); } catch (e) { err = e.message; }
      console.log(JSON.stringify({ first, early, rest, codes: ps.map((p) => p.exitCode), timedOut, waitMs, pred, err }));
    `);
    const r = JSON.parse(out);
    expect(r.first.every((x: { ok: boolean }) => x.ok)).toBe(true);
    expect(r.early).toBe(false);
    expect(r.rest.every((x: { ok: boolean }) => x.ok)).toBe(true);
    expect(new Set([...r.first, ...r.rest].map((x: { k: number }) => x.k)).size).toBe(4);
    expect(r.codes).toEqual([0, 0, 0, 0]);
    expect(r.timedOut).toBe(false);
    expect(r.waitMs).toBeGreaterThanOrEqual(50);
    expect(r.pred).toBe(false);
    expect(r.err).toMatch(/Condition\.notify\(\): the condition's lock is not held by this thread/);
  });

  it('works with a user-given Lock and an RLock held several times', async () => {
    const out = await runNodeOk(`
      import { Condition, Lock, RLock, Process } from LIB;
      const res = [];
      for (const lock of [new Lock(), new RLock()]) {
        const c = new Condition(lock);
        await c.acquire();
        if (lock instanceof RLock) await c.acquire();
        const p = new Process({ target: async (c) => { await c.acquire(); c.notify(); c.release(); }, args: [c] });
        p.start();
        const ok = await c.wait(20000);
        // Held again after wait, at the same depth.
        const held = lock instanceof RLock ? lock.count : !lock.acquireSync({ block: false });
        c.release();
        if (lock instanceof RLock) c.release();
        await p.join();
        res.push({ ok, held, code: p.exitCode });
      }
      console.log(JSON.stringify(res));
    `);
    expect(JSON.parse(out)).toEqual([{ ok: true, held: true, code: 0 }, { ok: true, held: 2, code: 0 }]);
  });
});
