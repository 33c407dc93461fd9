// Progress under contention: locks are unfair (as glibc's and CPython's are), but a process that
// waits — spinning or parked — gets the lock within a wide time bound even while another process
// takes it again at once after each release.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('lock progress', () => {
  for (const [kind, wait] of [
    ['RLock', 'acquireSync'],
    ['Lock', 'acquireSync'],
    ['Lock', 'acquire'],
  ] as const) {
    it(`${kind}.${wait}(): two processes re-acquiring at once after each release both get the lock, again and again`, async () => {
      const out = await runNodeOk(`
        import { ${kind}, Process, RawArray } from LIB;
        const lock = new ${kind}();
        // [0], [1]: how often each process got the lock; [2]: stop.
        const counts = RawArray('i', 3);
        const worker = async (lock, counts, k, useAsync) => {
          while (counts.get(2) === 0) {
            if (useAsync) await lock.acquire(); else lock.acquireSync();
            counts.set(k, counts.get(k) + 1);
            // Hold it a little, so that the other one mostly finds it taken and parks.
            const until = performance.now() + 0.02;
            while (performance.now() < until);
            lock.release();
          }
        };
        const ps = [0, 1].map((k) => new Process({ target: worker, args: [lock, counts, k, ${wait === 'acquire'}], daemon: true }));
        ps.forEach((p) => p.start());
        // Both must have got it at least 20 times; the bound is wide (a loaded machine).
        const start = performance.now();
        while (performance.now() - start < 20000 && (counts.get(0) < 20 || counts.get(1) < 20)) await new Promise((r) => setTimeout(r, 20));
        const ms = performance.now() - start;
        const got = [counts.get(0), counts.get(1)];
        counts.set(2, 1);
        for (const p of ps) await p.join();
        console.log(JSON.stringify({ got, ms, codes: ps.map((p) => p.exitCode) }));
      `);
      const r = JSON.parse(out);
      expect(r.codes).toEqual([0, 0]);
      expect(r.got[0]).toBeGreaterThanOrEqual(20);
      expect(r.got[1]).toBeGreaterThanOrEqual(20);
    }, 60_000);
  }
});
