// chunksize: a positive integer (0, negatives, fractions and non-numbers throw, naming it); any
// chunk size gives the same results; the default splits map's input in about 4 tasks per worker.
import { describe, expect, it } from 'vitest';
import { KINDS, makePool } from '../helpers/pool.js';

describe.each(KINDS)('%s chunksize', (name, P) => {
  it('0, negative, fractional and non-number chunk sizes throw at the call', () => {
    const pool = makePool(P, 1);
    const fn = (x: number) => x;
    for (const bad of [0, -1, -100, 1.5, NaN, Infinity, '2', null as never]) {
      if (bad === null) continue; // null means "the default", as in Python
      for (const method of ['map', 'mapAsync', 'starmap', 'starmapAsync', 'imap', 'imapUnordered'] as const) {
        expect(() => (pool[method] as Function).call(pool, fn, [[1]], { chunksize: bad })).toThrow(
          `${name}.${method}: chunksize must be a positive integer, got ${String(bad)}`,
        );
      }
    }
  });

  it('every chunk size gives the same results, also larger than the input', async () => {
    const pool = makePool(P, 2);
    const items = Array.from({ length: 37 }, (_, i) => i);
    const want = items.map((x) => x * x + 1);
    for (const chunksize of [1, 2, 5, 36, 37, 38, 1000, undefined]) {
      expect(await pool.map((x: number) => x * x + 1, items, { chunksize })).toEqual(want);
      const got: number[] = [];
      for await (const x of pool.imap((x: number) => x * x + 1, items, { chunksize })) got.push(x);
      expect(got).toEqual(want);
      const un: number[] = [];
      for await (const x of pool.imapUnordered((x: number) => x * x + 1, items, { chunksize })) un.push(x);
      expect(un.sort((a, b) => a - b)).toEqual(want);
      expect(await pool.starmap((a: number, b: number) => a * b, items.map((x) => [x, 2]), { chunksize })).toEqual(items.map((x) => x * 2));
    }
  });

  it('chunks of numbers travel packed and come back exact: -0, NaN, ±Infinity, int32 edges, doubles, mixed and non-number results', async () => {
    const pool = makePool(P, 2);
    const odd = [-0, NaN, Infinity, -Infinity, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 0.1, Number.MAX_VALUE, Number.MIN_VALUE];
    const items = Array.from({ length: 200 }, (_, i) => (i % 17 === 0 ? odd[(i / 17) % odd.length]! : i % 3 ? i : i + 0.25));
    const same = (got: unknown[], want: unknown[]) => {
      expect(got.length).toBe(want.length);
      want.forEach((w, i) => expect(Object.is(got[i], w), `item ${i}: ${String(got[i])} vs ${String(w)}`).toBe(true));
    };
    for (const chunksize of [20, 64, undefined]) {
      same(await pool.map((x: number) => x, items, { chunksize }), items);
      same(await pool.map((x: number) => -x, items, { chunksize }), items.map((x) => -x));
      // A result that is not a number in the middle of a chunk: that chunk comes back unpacked.
      same(await pool.map((x: number) => (x === 100 ? 'hundred' : x), items, { chunksize }), items.map((x) => (x === 100 ? 'hundred' : x)));
      // Items that are not all numbers: the chunk goes as it is.
      const mixed: unknown[] = [...items];
      mixed[50] = 'fifty';
      mixed[51] = undefined;
      same(await pool.map((x: unknown) => x, mixed, { chunksize }), mixed);
    }
    // A sparse input: holes are read as undefined, as iterating it would.
    const sparse = Array.from({ length: 40 }, (_, i) => i);
    delete sparse[7];
    const got = await pool.map((x: number | undefined) => (x === undefined ? 'hole' : x), sparse, { chunksize: 20 });
    same(got, sparse.map((x, i) => (i === 7 ? 'hole' : x)));
    expect(Object.getPrototypeOf(got)).toBe(Array.prototype);
  });

  it('the default chunk size is Python\'s: about 4 tasks per worker', async () => {
    const pool = makePool(P, 2);
    // A chunk runs in one worker, item after item: each worker counts its calls, and the count
    // rises by one within every chunk of 80 / (2 workers * 4) = 10 items.
    const n = 80;
    const stamps = await pool.map((x: number) => {
      const g = globalThis as Record<string, number>;
      g.calls = (g.calls ?? 0) + 1;
      return g.calls;
    }, Array.from({ length: n }, (_, i) => i));
    for (let i = 0; i < n; i += 10) {
      const chunk = stamps.slice(i, i + 10);
      expect(chunk.every((c, j) => j === 0 || c === chunk[j - 1]! + 1)).toBe(true);
    }
  });
});
