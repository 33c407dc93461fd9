// 10,000 tasks leave nothing behind: no fd, no child process, no thread, and the pool's own
// bookkeeping does not grow with the number of tasks run.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { runNodeOk } from '../helpers/child.js';
import { KINDS } from '../helpers/pool.js';

const fdCount = () => readdirSync('/proc/self/fd').length;

describe.each(KINDS)('%s leaks', (name) => {
  it('10,000 tasks through apply, map, imap and errors: no fd, child or memory left behind', async () => {
    const out = await runNodeOk(`
      import { ${name}, activeChildren, Pipe } from LIB;
      import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
      const fds = () => readdirSync('/proc/self/fd').length;
      const threads = () => Number(/Threads:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
      const heap = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().heapUsed; };
      const list = () => readdirSync('/proc/self/fd').map((f) => { try { return f + ' -> ' + readlinkSync('/proc/self/fd/' + f); } catch { return f; } });
      // Node keeps a few fds from its first worker thread (/dev/null for its stdin): baseline after one.
      const warm = new ${name}(1);
      await warm.apply((x) => x, [1]);
      await warm.terminate();
      const fd0 = fds(), threads0 = threads(), list0 = list();
      const pool = new ${name}({ processes: 2, maxtasksperchild: 2500 });
      const [here, there] = Pipe();
      let heapAfterWarmup = 0;
      let done = 0;
      for (let round = 0; round < 5; round++) {
        const apply = await Promise.all(Array.from({ length: 500 }, (_, i) => pool.apply((x) => x + 1, [i])));
        const mapped = await pool.map((x) => x * 2, Array.from({ length: 1000 }, (_, i) => i), { chunksize: 1 });
        let n = 0;
        for await (const x of pool.imap((x) => x, Array.from({ length: 400 }, (_, i) => i))) n++;
        const errors = await Promise.all(Array.from({ length: 50 }, () => pool.apply(() => { throw new Error('x'); }).catch(() => 1)));
        const handles = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.apply((c, i) => { c.send(i); return i; }, [there, i])));
        for (let i = 0; i < 50; i++) await here.recv();
        done += apply.length + mapped.length + n + errors.length + handles.length;
        if (round === 0) heapAfterWarmup = heap();
      }
      const heapGrowth = heap() - heapAfterWarmup;
      pool.close();
      await pool.join();
      here.close(); there.close();
      // A thread's environment closes its fds as it is torn down, just after it has ended.
      for (let i = 0; i < 50 && fds() > fd0; i++) await new Promise((r) => setTimeout(r, 20));
      // The addon's waiter threads (the pool's parked waits for results) end after 5 s idle.
      for (let i = 0; i < 80 && threads() > threads0; i++) await new Promise((r) => setTimeout(r, 100));
      console.log(JSON.stringify({ done, fds: fds() - fd0, children: activeChildren().length, newFds: list().filter((f) => !list0.includes(f)), threads: threads() - threads0, heapGrowthKb: Math.round(heapGrowth / 1024) }));
    `, { execArgv: ['--expose-gc'] });
    const r = JSON.parse(out);
    expect(r.done).toBe(10_000);
    expect(r.fds).toBeLessThanOrEqual(0);
    expect(r.children).toBe(0);
    expect(r.threads).toBeLessThanOrEqual(0);
    expect(r.heapGrowthKb).toBeLessThan(2048);
  });

  it('pools made and ended one after another release everything', async () => {
    const { Pool, ThreadPool } = await import('../../lib/index.js');
    const P = name === 'Pool' ? Pool : ThreadPool;
    const before = fdCount();
    for (let i = 0; i < 8; i++) {
      const pool = new P(2);
      expect(await pool.map((x: number) => x + 1, [1, 2, 3])).toEqual([2, 3, 4]);
      if (i % 2) await pool.terminate();
      else {
        pool.close();
        await pool.join();
      }
    }
    expect(fdCount()).toBeLessThanOrEqual(before);
  });
});
