// Results in the right order (map, starmap, imap) or complete (imapUnordered), whatever order the
// tasks finish in; imap streams: it yields before its input ends, reads async inputs, and reads
// an endless input only as fast as it is consumed.
import { describe, expect, it } from 'vitest';
import { KINDS, makePool, sleep, task } from '../helpers/pool.js';

const N = 40;
// Tasks that finish out of order: the early items take longest.
const delays = Array.from({ length: N }, (_, i) => [i, (N - i) % 7] as [number, number]);

describe.each(KINDS)('%s order', (_name, P) => {
  it('map returns results in input order, with chunksize 1, 3 and the default', async () => {
    const pool = makePool(P, 3);
    const want = delays.map(([i]) => i);
    const items = delays.map(([i]) => i);
    expect(await pool.map((x: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, (40 - x) % 7);
      return x;
    }, items, { chunksize: 1 })).toEqual(want);
    expect(await pool.map((x: number) => x, items, { chunksize: 3 })).toEqual(want);
    expect(await pool.map((x: number) => x * 2, items)).toEqual(want.map((x) => x * 2));
    expect(await pool.mapAsync((x: number) => x + 1, items).get()).toEqual(want.map((x) => x + 1));
  });

  it('starmap spreads each args array, in order', async () => {
    const pool = makePool(P, 2);
    expect(await pool.starmap(task('busyThen'), delays)).toEqual(delays.map(([i]) => i));
    expect(await pool.starmap((a: number, b: number) => a * b, [[1, 2], [3, 4], [5, 6]], { chunksize: 2 })).toEqual([2, 12, 30]);
    expect(await pool.starmapAsync((a: number, b: number) => a - b, [[5, 1], [7, 2]], { chunksize: 1 }).get()).toEqual([4, 5]);
  });

  it('imap yields in input order', async () => {
    const pool = makePool(P, 3);
    for (const chunksize of [1, 4]) {
      const got: number[] = [];
      for await (const x of pool.imap((a: [number, number]) => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, a[1]);
        return a[0];
      }, delays, { chunksize })) got.push(x);
      expect(got).toEqual(delays.map(([i]) => i));
    }
  });

  it('imapUnordered yields every result once, in completion order', async () => {
    const pool = makePool(P, 2);
    const got: number[] = [];
    for await (const x of pool.imapUnordered(task('square'), [0, 1, 2, 3, 4, 5])) got.push(Math.sqrt(x));
    expect(got.slice().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    // Item 0 takes longest: it comes last although it went out first.
    const star: number[] = [];
    const it = pool.imapUnordered((a: [number, number]) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, a[1]);
      return a[0];
    }, [[0, 400], [1, 0], [2, 0], [3, 0]], { chunksize: 1 });
    for await (const x of it) star.push(x);
    expect(star.slice().sort()).toEqual([0, 1, 2, 3]);
    expect(star[star.length - 1]).toBe(0);
    const many: number[] = [];
    for await (const x of pool.imapUnordered((x: number) => x, Array.from({ length: 3000 }, (_, i) => i), { chunksize: 7 })) many.push(x);
    expect(many.length).toBe(3000);
    expect(new Set(many).size).toBe(3000);
  });

  it('imap starts yielding before its input is exhausted', async () => {
    const pool = makePool(P, 2);
    let firstSeen!: () => void;
    const seen = new Promise<void>((r) => (firstSeen = r));
    let pulledAfter = -1;
    async function* input() {
      yield 1;
      yield 2;
      await seen; // the rest of the input comes only once a result has been yielded
      pulledAfter = 3;
      yield 3;
    }
    const got: number[] = [];
    for await (const x of pool.imap((x: number) => x * 10, input())) {
      got.push(x);
      firstSeen();
    }
    expect(got).toEqual([10, 20, 30]);
    expect(pulledAfter).toBe(3);
  });

  it('imap and map read async iterables', async () => {
    const pool = makePool(P, 2);
    async function* input(n: number) {
      for (let i = 0; i < n; i++) {
        if (i % 5 === 0) await sleep(1);
        yield i;
      }
    }
    const got: number[] = [];
    for await (const x of pool.imap((x: number) => -x, input(23), { chunksize: 4 })) got.push(x);
    expect(got).toEqual(Array.from({ length: 23 }, (_, i) => -i));
    expect(await pool.map((x: number) => x + 1, input(10))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('an endless input is read only as far as it is consumed (backpressure)', async () => {
    const pool = makePool(P, 2);
    let pulled = 0;
    function* endless() {
      for (let i = 0; ; i++) {
        pulled++;
        yield i;
      }
    }
    let n = 0;
    const it = pool.imap((x: number) => x, endless());
    for await (const x of it) {
      expect(x).toBe(n);
      if (++n === 5000) break;
    }
    // Read ahead is bounded (128 tasks per worker), however fast the pool is.
    expect(pulled - n).toBeLessThanOrEqual(2 * 128 + 1);
    // After break, the iterator is done and the input is no longer read.
    const before = pulled;
    await sleep(50);
    expect(pulled).toBe(before);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    // The pool goes on.
    expect(await pool.apply((x: number) => x + 1, [1])).toBe(2);
  });

  it('an input that throws fails imap at its position, after the results before it', async () => {
    const pool = makePool(P, 2);
    function* failing() {
      yield 1;
      yield 2;
      throw new RangeError('input broke');
    }
    const got: number[] = [];
    await expect((async () => {
      for await (const x of pool.imap((x: number) => x, failing())) got.push(x);
    })()).rejects.toThrow('input broke');
    expect(got).toEqual([1, 2]);
    // In the middle of a chunk: the items read before the error still come.
    function* midChunk() {
      yield* [1, 2, 3];
      throw new RangeError('mid-chunk');
    }
    const chunked: number[] = [];
    await expect((async () => {
      for await (const x of pool.imap((x: number) => x, midChunk(), { chunksize: 2 })) chunked.push(x);
    })()).rejects.toThrow('mid-chunk');
    expect(chunked).toEqual([1, 2, 3]);
    await expect(pool.map((x: number) => x, (async function* () {
      yield 1;
      throw new Error('async input broke');
    })())).rejects.toThrow('async input broke');
  });

  it('empty inputs', async () => {
    const pool = makePool(P, 2);
    expect(await pool.map((x: number) => x, [])).toEqual([]);
    expect(await pool.starmap((x: number) => x, [])).toEqual([]);
    const got: unknown[] = [];
    for await (const x of pool.imap((x: number) => x, [])) got.push(x);
    for await (const x of pool.imapUnordered((x: number) => x, new Set())) got.push(x);
    expect(got).toEqual([]);
  });
});
