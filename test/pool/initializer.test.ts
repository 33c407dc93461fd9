// initializer/initargs run once in each worker before it takes tasks (handles travel in
// initargs too); an initializer that throws breaks the pool: every result rejects, naming it.
import { describe, expect, it } from 'vitest';
import { Pipe, ProcessError } from '../../lib/index.js';
import { KINDS, makePool, task } from '../helpers/pool.js';

describe.each(KINDS)('%s initializer', (name, P) => {
  it('runs in every worker with its initargs, a Connection among them', async () => {
    const [here, there] = Pipe();
    const pool = makePool(P, { processes: 2, initializer: task('initialize'), initargs: [{ answer: 42 }, there] });
    const got = [await here.recv(), await here.recv()] as { initialized: number; threadId: number }[];
    const workers = new Set(got.map((g) => (name === 'Pool' ? g.initialized : g.threadId)));
    expect(workers.size).toBe(2);
    const rs = await pool.map(task('whereAmI'), [1, 2, 3, 4], { chunksize: 1 });
    expect(rs.every((r) => (r.init as { answer: number }).answer === 42)).toBe(true);
    here.close();
    there.close();
  });

  it('a function initializer', async () => {
    const pool = makePool(P, { processes: 1, initializer: (x: number) => { (globalThis as Record<string, unknown>).FACTOR = x; }, initargs: [7] });
    expect(await pool.apply((y: number) => ((globalThis as Record<string, unknown>).FACTOR as number) * y, [6])).toBe(42);
  });

  it('an initializer that throws rejects every result with a ProcessError naming it, and the pool refuses more', async () => {
    const pool = makePool(P, { processes: 2, initializer: () => { throw new RangeError('no database'); } });
    const a = pool.apply((x: number) => x, [1]).catch((e) => e);
    const b = pool.map((x: number) => x, [1, 2, 3]).catch((e) => e);
    for (const err of await Promise.all([a, b])) {
      expect(err).toBeInstanceOf(ProcessError);
      expect(err.message).toMatch(/the initializer failed in worker \S+ \(.+\): RangeError: no database/);
      expect(err.cause.name).toBe('RangeError');
      expect(err.cause.cause.message).toMatch(/RangeError: no database/);
    }
    expect(() => pool.apply((x: number) => x, [1])).toThrow(/the pool is broken \(.*no database\); make a new one/);
    pool.close();
    await pool.join();
  });

  it('workers that keep dying before they are ready break the pool instead of restarting forever', async () => {
    const pool = makePool(P, { processes: 1, initializer: () => process.exit(7) });
    const err = await pool.apply((x: number) => x, [1]).catch((e) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.message).toMatch(/3 workers in a row ended before they were ready \(the last \S+ \(.+\) with exit code 7\)/);
    expect(() => pool.map((x: number) => x, [1])).toThrow(/the pool is broken/);
  });

  it('bad options throw at construction, naming them', () => {
    expect(() => new P({ processes: 0 })).toThrow(`${name}: processes must be an integer >= 1, got 0`);
    expect(() => new P({ processes: 1.5 })).toThrow(/processes must be an integer >= 1, got 1.5/);
    expect(() => new P({ maxtasksperchild: 0 })).toThrow(`${name}: maxtasksperchild must be a positive integer or null, got 0`);
    expect(() => new P({ initializer: 5 as never })).toThrow(/initializer: target must be a function or \{ module, name \}/);
    expect(() => new P({ initargs: 'x' as never })).toThrow(/initargs must be an array/);
    expect(() => new P({ initializer: () => {}, initargs: [() => 1] })).toThrow(/cannot send initargs: cannot send value at initargs\[0\] \(a function\)/);
  });
});
