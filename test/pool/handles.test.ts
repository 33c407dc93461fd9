// Task arguments and results travel by the codec's reduction: handles (Connections here; Queues,
// Locks, Values and proxies as they register) work inside Pool and ThreadPool tasks.
import { describe, expect, it } from 'vitest';
import { Lock, Pipe, Value, type Connection } from '../../lib/index.js';
import { KINDS, makePool, task } from '../helpers/pool.js';

describe.each(KINDS)('%s handles', (name, P) => {
  it('a Connection passed to tasks works in the worker; several tasks share one pipe', async () => {
    const pool = makePool(P, 2);
    const [here, there] = Pipe();
    const sent = await pool.map((c: Connection) => {
      c.send({ from: process.pid });
      return 'sent';
    }, [there, there, there], { chunksize: 1 });
    expect(sent).toEqual(['sent', 'sent', 'sent']);
    for (let i = 0; i < 3; i++) expect(await here.recv()).toHaveProperty('from');
    // Both ways: the task waits for our message on the Connection it was given.
    const echo = pool.apply(async (c: Connection) => `echo ${await c.recv()}`, [there]);
    here.send('ping');
    expect(await echo).toBe('echo ping');
    here.close();
    there.close();
  });

  it('a Connection made in a worker comes back as a result and works here', async () => {
    const pool = makePool(P, 1);
    // (A module target: the test runner rewrites import() inside functions written here.)
    const conn = (await pool.apply(task('makeConnection'), ['made in a worker'])) as Connection;
    expect(await conn.recv()).toBe('made in a worker');
    conn.close();
  });

  it('a Value and its lock, and a Lock, passed to tasks are the same objects in every worker', async () => {
    const pool = makePool(P, 2);
    const v = Value('i', 0);
    type Counter = { value: number; getLock(): { acquireSync(): boolean; release(): void } };
    const add = (c: Counter, n: number) => {
      for (let i = 0; i < n; i++) {
        c.getLock().acquireSync();
        c.value += 1;
        c.getLock().release();
      }
      return n;
    };
    expect(await pool.starmap(add, Array.from({ length: 8 }, () => [v, 500]), { chunksize: 1 })).toEqual(Array(8).fill(500));
    expect(v.value).toBe(4000);
    const lock = new Lock();
    lock.acquireSync();
    // Held here: a task cannot take it; released, it can.
    expect(await pool.apply(async (l: Lock) => l.acquire({ timeout: 50 }), [lock])).toBe(false);
    lock.release();
    expect(await pool.apply(async (l: Lock) => {
      const got = await l.acquire({ timeout: 1000 });
      l.release();
      return got;
    }, [lock])).toBe(true);
  });

  it('starmap tasks get handles among other arguments', async () => {
    const pool = makePool(P, 2);
    const [here, there] = Pipe();
    await pool.starmap((c: Connection, i: number) => c.send(i * 10), [[there, 1], [there, 2]], { chunksize: 1 });
    const got = [await here.recv(), await here.recv()].sort();
    expect(got).toEqual([10, 20]);
    here.close();
    there.close();
    expect(name).toBeTruthy();
  });
});
