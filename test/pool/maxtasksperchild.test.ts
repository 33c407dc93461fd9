// maxtasksperchild: a worker exits after that many tasks and a new one (a new pid, a new
// thread) takes over; every task still runs exactly once, and the initializer runs in each.
import { describe, expect, it } from 'vitest';
import { KINDS, makePool, task } from '../helpers/pool.js';

describe.each(KINDS)('%s maxtasksperchild', (name, P) => {
  it('recycles workers after maxtasksperchild tasks', async () => {
    const pool = makePool(P, { processes: 2, maxtasksperchild: 3, initializer: task('initialize'), initargs: ['fresh'] });
    const rs = await pool.map(task('whereAmI'), Array.from({ length: 20 }, (_, i) => i), { chunksize: 1 });
    expect(rs.map((r) => r.x)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const key = (r: { pid: number; threadId: number }) => (name === 'Pool' ? r.pid : r.threadId);
    const perWorker = new Map<number, number>();
    for (const r of rs) perWorker.set(key(r), (perWorker.get(key(r)) ?? 0) + 1);
    // 20 tasks, at most 3 per worker: at least 7 different workers, none ran more than 3.
    expect(perWorker.size).toBeGreaterThanOrEqual(7);
    expect(Math.max(...perWorker.values())).toBeLessThanOrEqual(3);
    expect(rs.every((r) => r.init === 'fresh')).toBe(true);
    // A chunk counts as one task (as in Python).
    const chunked = await pool.map(task('whereAmI'), Array.from({ length: 12 }, (_, i) => i), { chunksize: 4 });
    expect(chunked.map((r) => r.x)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    pool.close();
    await pool.join();
  });

  it('apply after apply with maxtasksperchild 1 always gets a new worker', async () => {
    const pool = makePool(P, { processes: 1, maxtasksperchild: 1 });
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const r = await pool.apply(task('whereAmI'), [i]);
      seen.add(name === 'Pool' ? r.pid : r.threadId);
    }
    expect(seen.size).toBe(4);
  });
});
