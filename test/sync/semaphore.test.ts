// Semaphore and BoundedSemaphore: counting, values, bounds, timeouts, and waiters in other processes.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Semaphore', () => {
  it('counts, reports its value, times out, and checks its arguments', async () => {
    const out = await runNodeOk(`
      import { Semaphore, BoundedSemaphore } from LIB;
      const r = {};
      const s = new Semaphore(2);
      r.a = [s.acquireSync(), await s.acquire(), s.acquireSync({ block: false }), s.getValue()];
      let t = performance.now();
      r.timedOut = await s.acquire({ timeout: 80 });
      r.ms = performance.now() - t;
      s.release(); s.release(); s.release();
      r.afterThree = s.getValue(); // an unbounded semaphore may go above its start
      r.def = new Semaphore().getValue();
      for (const bad of [-1, 1.5, 'x']) { try { new Semaphore(bad); } catch (e) { (r.bad ??= []).push(e.message); } }
      const b = new BoundedSemaphore(2);
      b.acquireSync(); b.release();
      try { b.release(); } catch (e) { r.bounded = e.message; }
      r.boundedValue = b.getValue();
      r.str = String(b);
      console.log(JSON.stringify(r));
    `);
    const r = JSON.parse(out);
    expect(r.a).toEqual([true, true, false, 0]);
    expect(r.timedOut).toBe(false);
    expect(r.ms).toBeGreaterThanOrEqual(70);
    expect(r.afterThree).toBe(3);
    expect(r.def).toBe(1);
    expect(r.bad).toHaveLength(3);
    expect(r.bad[0]).toMatch(/Semaphore: the initial value must be an integer >= 0/);
    expect(r.bounded).toMatch(/BoundedSemaphore\.release\(\): released more times than acquired/);
    expect(r.boundedValue).toBe(2);
    expect(r.str).toBe('<BoundedSemaphore(value=2)>');
  });

  it('at most N processes are inside at once, and all get through', async () => {
    const out = await runNodeOk(`
      import { Semaphore, Process } from LIB;
      import { Segment } from ${JSON.stringify(new URL('../../dist/segment.js', import.meta.url).href)};
      const s = new Semaphore(2);
      const seg = Segment.create(8);
      const ps = [0, 1, 2, 3, 4].map((k) => new Process({
        target: async (s, seg, k) => {
          const w = seg.words();
          for (let i = 0; i < 20; i++) {
            if (k % 2) await s.acquire(); else s.acquireSync();
            const now = Atomics.add(w, 0, 1) + 1;
            for (let m = Atomics.load(w, 1); now > m; m = Atomics.load(w, 1)) Atomics.compareExchange(w, 1, m, now);
            await new Promise((r) => setTimeout(r, 2));
            Atomics.sub(w, 0, 1);
            s.release();
          }
        },
        args: [s, seg, k],
      }));
      ps.forEach((p) => p.start());
      for (const p of ps) await p.join();
      const w = seg.words();
      console.log(JSON.stringify({ inside: w[0], maxInside: w[1], value: s.getValue(), codes: ps.map((p) => p.exitCode) }));
    `);
    const r = JSON.parse(out);
    expect(r.inside).toBe(0);
    expect(r.maxInside).toBeLessThanOrEqual(2);
    expect(r.maxInside).toBeGreaterThanOrEqual(1);
    expect(r.value).toBe(2);
    expect(r.codes).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('holder identity', () => {
  it('a recorded holder whose tid now names another process (a reused tid) counts as dead; the real one does not', async () => {
    const out = await runNodeOk(`
      import { Lock } from LIB;
      import { native } from ${JSON.stringify(new URL('../../dist/native.js', import.meta.url).href)};
      import { spawn } from 'node:child_process';
      import { readFileSync } from 'node:fs';
      // A live process stands in for "some other thread that now has the dead owner's tid".
      const other = spawn('sleep', ['30']);
      await new Promise((r) => other.once('spawn', r));
      const start = Number(readFileSync('/proc/' + other.pid + '/stat', 'utf8').split(') ')[1].split(' ')[19]);
      const realToken = (start % 0x7ffffffe) + 1;
      const l = new Lock();
      const w = l.word.w;
      // Recorded as held by that process with a token that is not its own: a reused tid.
      w[0] = other.pid; w[1] = realToken + 1;
      const reused = l.acquireSync({ timeout: 5000 });
      const reusedDied = l.ownerDied;
      // Recorded with its true token: alive, so no take-over.
      w[0] = other.pid; w[1] = realToken;
      const alive = l.acquireSync({ timeout: 400 });
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
      console.log(JSON.stringify({ reused, reusedDied, alive }));
    `);
    expect(JSON.parse(out)).toEqual({ reused: true, reusedDied: true, alive: false });
  });
});
