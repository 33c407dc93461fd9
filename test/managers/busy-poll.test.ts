// A manager process polls its clients for a while after each request (lib/manager-server.ts): a
// client that calls without pause must not starve the others, the server's timers, or async results.
import { describe, expect, it } from 'vitest';
import { Empty, Process, type SyncManager } from '../../lib/index.js';
import { useManager } from '../helpers/manager.js';

let m: SyncManager;
useManager((x) => (m = x));

describe('the busy-poll of a manager process', () => {
  it('serves other clients, timed waits and async results while one client calls without pause', async () => {
    const d = await m.dict();
    const ev = await m.Event();
    const p = new Process({
      // Several calls in flight at all times: the server always has the next request waiting.
      target: async (d: any, ev: any) => {
        let i = 0;
        let stop = false;
        d.setSync('started', true);
        const hammer = async () => {
          while (!stop) await d.set('n', ++i);
        };
        const all = Array.from({ length: 8 }, hammer);
        while (!(await ev.isSet()));
        stop = true;
        await Promise.all(all);
      },
      args: [d, ev],
    });
    p.start();
    try {
      const t0 = Date.now();
      while (!(await d.get('started', false))) {
        if (Date.now() - t0 > 20_000) throw new Error('the hammering child did not start');
        await new Promise((r) => setTimeout(r, 10));
      }
      const q = await m.Queue();
      // A timed wait ends by a timer in the server.
      const t1 = Date.now();
      await expect(q.get({ timeout: 100 })).rejects.toThrow(Empty);
      expect(Date.now() - t1).toBeLessThan(5_000);
      // An async result (a get parked in the server) reaches us once another call completes it.
      const waiting = q.get();
      await q.put('x');
      expect(await waiting).toBe('x');
      // Our own calls keep going, sync and async, and the child keeps counting meanwhile.
      const before = d.getSync('n');
      for (let i = 0; i < 50; i++) await d.set(`k${i}`, i);
      for (let i = 0; i < 50; i++) expect(d.getSync(`k${i}`)).toBe(i);
      expect(d.getSync('n')).toBeGreaterThan(before);
    } finally {
      await ev.set();
      await p.join(20_000);
      if (p.exitCode === null) p.kill();
    }
    expect(p.exitCode).toBe(0);
  });
});
