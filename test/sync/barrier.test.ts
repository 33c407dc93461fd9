// Barrier across processes: distinct indices, the action once per round, timeouts, abort and reset.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Barrier', () => {
  it('3 processes pass together, round after round; each gets a distinct index; the action runs once per round', async () => {
    const out = await runNodeOk(`
      import { Barrier, Process, Pipe } from LIB;
      import { Segment } from ${JSON.stringify(new URL('../../dist/segment.js', import.meta.url).href)};
      const seg = Segment.create(8);
      globalThis.__seg = seg;
      const b = new Barrier(3, { action: () => { globalThis.__actions = (globalThis.__actions ?? 0) + 1; } });
      const [rx, tx] = Pipe(false);
      const ps = [0, 1, 2].map(() => new Process({
        target: async (b, tx) => {
          const got = [];
          for (let round = 0; round < 3; round++) got.push(await b.wait());
          tx.send({ got, actions: globalThis.__actions ?? 0 });
        },
        args: [b, tx],
      }));
      ps.forEach((p) => p.start());
      tx.close();
      const res = [await rx.recv(), await rx.recv(), await rx.recv()];
      for (const p of ps) await p.join();
      console.log(JSON.stringify({ res, codes: ps.map((p) => p.exitCode), parties: b.parties, nWaiting: b.nWaiting, broken: b.broken }));
    `);
    const r = JSON.parse(out);
    expect(r.codes).toEqual([0, 0, 0]);
    for (let round = 0; round < 3; round++) expect(r.res.map((x: { got: number[] }) => x.got[round]).sort()).toEqual([0, 1, 2]);
    // The last to arrive runs the action: 3 rounds, 3 actions in all.
    expect(r.res.reduce((n: number, x: { actions: number }) => n + x.actions, 0)).toBe(3);
    expect(r).toMatchObject({ parties: 3, nWaiting: 0, broken: false });
  });

  it('a timeout breaks it for everyone; abort and reset; BrokenBarrierError', async () => {
    const out = await runNodeOk(`
      import { Barrier, BrokenBarrierError, Process } from LIB;
      const r = {};
      const b = new Barrier(3, { timeout: 100 });
      const p = new Process({ target: async (b) => { try { await b.wait(20000); return; } catch (e) { process.exit(e.name === 'BrokenBarrierError' ? 7 : 1); } }, args: [b] });
      p.start();
      for (let i = 0; i < 2000 && b.nWaiting === 0; i++) await new Promise((res) => setTimeout(res, 10));
      r.waitingBefore = b.nWaiting;
      try { await b.wait(); } catch (e) { r.timeout = [e.name, e instanceof BrokenBarrierError, e.message]; }
      await p.join();
      r.childCode = p.exitCode;
      r.broken = b.broken;
      try { await b.wait(); } catch (e) { r.whileBroken = e.message; }
      b.reset();
      r.afterReset = b.broken;
      const q = new Process({ target: async (b) => { try { await b.wait(20000); } catch (e) { process.exit(e.name === 'BrokenBarrierError' ? 7 : 1); } }, args: [b] });
      q.start();
      for (let i = 0; i < 2000 && b.nWaiting === 0; i++) await new Promise((res) => setTimeout(res, 10));
      b.abort();
      await q.join();
      r.abortedChild = q.exitCode;
      r.abortedBroken = b.broken;
      try { new Barrier(0); } catch (e) { r.bad = e.message; }
      console.log(JSON.stringify(r));
    `);
    const r = JSON.parse(out);
    expect(r.waitingBefore).toBe(1);
    expect(r.timeout[0]).toBe('BrokenBarrierError');
    expect(r.timeout[1]).toBe(true);
    expect(r.timeout[2]).toMatch(/timed out after 100 ms/);
    expect(r.childCode).toBe(7);
    expect(r.broken).toBe(true);
    expect(r.whileBroken).toMatch(/the barrier is broken; reset\(\) it/);
    expect(r.afterReset).toBe(false);
    expect(r.abortedChild).toBe(7);
    expect(r.abortedBroken).toBe(true);
    expect(r.bad).toMatch(/parties must be an integer >= 1/);
  });
});
