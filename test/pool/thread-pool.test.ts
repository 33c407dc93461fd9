// ThreadPool: Python's pool API over worker_threads, on the same pool logic. Tasks run in threads
// of this process; the addon works there (Connections in args), and ending the pool ends them.
import { describe, expect, it } from 'vitest';
import { isMainThread, threadId } from 'node:worker_threads';
import { Pipe, Pool, ThreadPool, cpuCount, type Connection } from '../../lib/index.js';
import { makePool, task } from '../helpers/pool.js';

describe('ThreadPool', () => {
  it('is a Pool whose tasks run in worker threads of this process', async () => {
    const pool = makePool(ThreadPool, 3);
    expect(pool).toBeInstanceOf(Pool);
    expect(pool.processes).toBe(3);
    expect(isMainThread).toBe(true);
    const rs = await pool.map(task('whereAmI'), Array.from({ length: 30 }, (_, i) => i), { chunksize: 1 });
    expect(rs.every((r) => r.pid === process.pid)).toBe(true);
    expect(rs.every((r) => r.threadId !== threadId)).toBe(true);
    expect(new Set(rs.map((r) => r.threadId)).size).toBeGreaterThanOrEqual(1);
  });

  it('defaults to cpuCount() workers, as Pool does', () => {
    const t = makePool(ThreadPool, {});
    const p = makePool(Pool, {});
    expect(t.processes).toBe(cpuCount());
    expect(p.processes).toBe(cpuCount());
  });

  it('a Connection travels to a thread task and back as in a process', async () => {
    const pool = makePool(ThreadPool, 2);
    const [here, there] = Pipe();
    const r = pool.apply(async (c: Connection, n: number) => {
      const x = (await c.recv()) as number;
      c.send(x * n);
      return 'ok';
    }, [there, 3]);
    here.send(14);
    expect(await here.recv()).toBe(42);
    expect(await r).toBe('ok');
    here.close();
    there.close();
  });
});
