// Many producers and many consumers in separate processes: every item arrives exactly once, in
// order per producer, through a small ring that wraps and fills many times over.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Queue across processes', () => {
  it('3 producers × 2 consumers × 50,000 items: each exactly once, FIFO per producer (sync and async sides)', async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      const PER = 50000, PRODUCERS = 3, CONSUMERS = 2;
      const q = new Queue({ capacityBytes: 65536, maxsize: 5000 });
      const results = new Queue();
      const producer = async (q, id, per, useAsync) => {
        for (let i = 0; i < per; i++) {
          const item = i % 100 === 0 ? { id, i, pad: 'x'.repeat(i % 700) } : [id, i];
          if (useAsync) await q.put(item); else q.putSync(item);
        }
      };
      const consumer = async (q, results, id, useAsync, producers) => {
        const seen = Array.from({ length: producers }, () => []);
        const last = new Array(producers).fill(-1);
        let outOfOrder = 0;
        for (;;) {
          const item = useAsync ? await q.get() : q.getSync();
          if (item === null) break;
          const [p, i] = Array.isArray(item) ? item : [item.id, item.i];
          if (!Array.isArray(item) && item.pad.length !== i % 700) throw new Error('torn item ' + JSON.stringify(item));
          if (i <= last[p]) outOfOrder++;
          last[p] = i;
          seen[p].push(i);
        }
        results.putSync({ id, seen, outOfOrder });
      };
      const ps = [];
      for (let c = 0; c < CONSUMERS; c++) ps.push(new Process({ target: consumer, args: [q, results, c, c === 1, PRODUCERS] }));
      const prods = [];
      for (let p = 0; p < PRODUCERS; p++) prods.push(new Process({ target: producer, args: [q, p, PER, p === 1] }));
      for (const p of [...ps, ...prods]) p.start();
      for (const p of prods) await p.join();
      for (let c = 0; c < CONSUMERS; c++) await q.put(null);
      const reports = [await results.get(), await results.get()];
      for (const p of ps) await p.join();
      const counts = Array.from({ length: PRODUCERS }, () => new Uint8Array(PER));
      let outOfOrder = 0;
      for (const r of reports) {
        outOfOrder += r.outOfOrder;
        r.seen.forEach((list, p) => list.forEach((i) => counts[p][i]++));
      }
      const bad = counts.map((c) => c.filter((n) => n !== 1).length);
      console.log(JSON.stringify({
        bad, outOfOrder, perConsumer: reports.map((r) => r.seen.flat().length),
        codes: [...ps, ...prods].map((p) => p.exitCode), left: q.qsize(), empty: q.empty(),
      }));
    `);
    const r = JSON.parse(out);
    expect(r.bad).toEqual([0, 0, 0]);
    expect(r.outOfOrder).toBe(0);
    expect(r.perConsumer[0] + r.perConsumer[1]).toBe(150000);
    expect(r.codes).toEqual([0, 0, 0, 0, 0]);
    expect(r.left).toBe(0);
    expect(r.empty).toBe(true);
  });

  it('wake-ups are never lost: 100,000 items through a tiny ring, parking at once (spinMs 0), each side slow in turn', async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      const N = 100000;
      for (const [sync, spinMs] of [[true, 0], [false, 0], [true, 0.05]]) {
        const q = new Queue({ capacityBytes: 1024, spinMs });
        const p = new Process({
          target: async (q, n, sync) => {
            // Slow now and then, so that the producer finds the ring full and parks.
            for (let i = 0; i < n; i++) {
              const x = sync ? q.getSync() : await q.get();
              if (x !== i) throw new Error('got ' + x + ' for ' + i);
              if (i % 5000 === 0) await new Promise((r) => setTimeout(r, 5));
            }
          },
          args: [q, N, sync],
        });
        p.start();
        const t = performance.now();
        for (let i = 0; i < N; i++) {
          // Slow now and then, so that the consumer finds the ring empty and parks.
          if (i % 7000 === 0) await new Promise((r) => setTimeout(r, 5));
          if (sync) q.putSync(i); else await q.put(i);
        }
        await p.join();
        console.log(JSON.stringify({ sync, spinMs, code: p.exitCode, ms: performance.now() - t }));
      }
    `);
    const runs = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    // A lost wake-up would hang (the test's timeout); a slow one would show here.
    for (const r of runs) expect(r.ms).toBeLessThan(45000);
  });
});
