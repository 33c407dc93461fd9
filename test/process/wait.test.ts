// wait() over Connections and Process sentinels, on the event loop.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('wait', () => {
  it('resolves with the sentinels of processes as they end, and with readable connections', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, wait } from LIB;
      const fast = new Process({ target: () => new Promise((r) => setTimeout(r, 100)) });
      const slow = new Process({ target: () => new Promise((r) => setTimeout(r, 5000)) });
      fast.start(); slow.start();
      let t0 = Date.now();
      const first = await wait([fast.sentinel, slow.sentinel]);
      const firstMs = Date.now() - t0;
      const [a, b] = Pipe();
      const [c, d] = Pipe();
      const none = await wait([a, c], 50);
      setTimeout(() => d.send('ping'), 50);
      const conns = await wait([a, c, slow.sentinel]);
      const both = await wait([fast.sentinel, c]);
      await slow.join();
      console.log(JSON.stringify({
        first: first.map((s) => s.process.name), firstMs, none: none.length,
        conns: conns.map((x) => (x === c ? 'c' : x === a ? 'a' : 'slow')),
        both: both.length, msg: await c.recv(),
      }));
    `);
    const r = JSON.parse(out);
    expect(r.first).toEqual(['Process-1']);
    expect(r.firstMs).toBeLessThan(4500);
    expect(r.none).toBe(0);
    expect(r.conns).toEqual(['c']);
    expect(r.both).toBe(2);
    expect(r.msg).toBe('ping');
  });

  it('a connection at EOF is ready; wait leaves no watcher behind', async () => {
    const out = await runNodeOk(`
      import { Pipe, wait } from LIB;
      const [a, b] = Pipe();
      const w = wait([a], 10_000);
      b.close();
      const ready = await w;
      for (let i = 0; i < 100; i++) await wait([a], 0);
      console.log(ready.length, a.pollSync(0));
      a.close();
    `);
    expect(out.trim()).toBe('1 true');
  });

  it('rejects objects it cannot wait on', async () => {
    const out = await runNodeOk(`
      import { wait } from LIB;
      try { await wait([{}]); } catch (e) { console.log(e.message); }
    `);
    expect(out.trim()).toBe('wait: objects[0] cannot be waited on: pass Connections, Process sentinels or Listeners');
  });
});
