// A function task is sent to each worker once and kept there: later tasks reuse the same
// compiled function (its own properties persist between tasks), whatever closure object the
// caller passes each time; a module target is imported once.
import { describe, expect, it } from 'vitest';
import { KINDS, makePool, task } from '../helpers/pool.js';

describe.each(KINDS)('%s targets', (_name, P) => {
  it('a function is compiled once per worker, not sent with every task', async () => {
    const pool = makePool(P, 1);
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      // A new function object each time, the same source: the worker keeps the one it compiled.
      const counter = function countCalls(): number {
        const self = countCalls as unknown as { calls?: number };
        self.calls = (self.calls ?? 0) + 1;
        return self.calls;
      };
      counts.push(await pool.apply(counter));
    }
    expect(counts).toEqual([1, 2, 3, 4, 5]);
    // In a map, across chunks too.
    const inMap = await pool.map(function countItems(_x: number): number {
      const self = countItems as unknown as { calls?: number };
      self.calls = (self.calls ?? 0) + 1;
      return self.calls;
    }, [0, 0, 0, 0, 0, 0], { chunksize: 2 });
    expect(inMap).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('module targets, by path or URL, resolve in the worker', async () => {
    const pool = makePool(P, 2);
    const byPath = task('square');
    const byUrl = { module: new URL(`file://${byPath.module}`), name: 'square' };
    expect(await pool.map(byPath, [1, 2, 3])).toEqual([1, 4, 9]);
    expect(await pool.apply(byUrl, [12])).toBe(144);
  });
});
