// close, join, terminate and Symbol.asyncDispose, as in Python: submitting after close() throws,
// join() waits for the work and the workers, terminate() ends a busy pool at once and rejects
// what was unfinished, and nothing is left running. An idle pool does not keep a program alive.
import { describe, expect, it } from 'vitest';
import { activeChildren } from '../../lib/index.js';
import { runNodeOk } from '../helpers/child.js';
import { KINDS, childPids, makePool, sleep, task } from '../helpers/pool.js';

describe.each(KINDS)('%s lifecycle', (name, P) => {
  it('submitting after close() throws, for every method', async () => {
    const pool = makePool(P, 1);
    pool.close();
    pool.close(); // idempotent
    const fn = (x: number) => x;
    const calls: [string, () => unknown][] = [
      ['apply', () => pool.apply(fn, [1])],
      ['applyAsync', () => pool.applyAsync(fn, [1])],
      ['map', () => pool.map(fn, [1])],
      ['mapAsync', () => pool.mapAsync(fn, [1])],
      ['starmap', () => pool.starmap(fn, [[1]])],
      ['starmapAsync', () => pool.starmapAsync(fn, [[1]])],
      ['imap', () => pool.imap(fn, [1])],
      ['imapUnordered', () => pool.imapUnordered(fn, [1])],
    ];
    for (const [method, call] of calls) {
      expect(call).toThrow(`${name}.${method}: the pool is closed; no task can be submitted after close() or terminate()`);
    }
    await pool.join();
  });

  it('join() before close() rejects; after close() it waits for the queued work and the workers', async () => {
    const pool = makePool(P, 2);
    await expect(pool.join()).rejects.toThrow(`${name}.join: the pool is still running; call close() or terminate() first`);
    const results = Array.from({ length: 6 }, (_, i) => pool.apply(task('sleepThen'), [i, 60]));
    pool.close();
    const t0 = Date.now();
    await pool.join();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100); // 6 tasks of 60 ms on 2 workers
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5]);
    if (name === 'Pool') expect(activeChildren()).toEqual([]);
    await pool.join(); // again: still resolved
  });

  it('terminate() on a busy pool rejects every unfinished result and leaves nothing running', async () => {
    const pool = makePool(P, 2);
    await pool.apply((x: number) => x, [0]); // workers up
    const stuck = pool.apply(task('sleepThen'), [1, 60_000]).catch((e) => e);
    const busy = pool.map(task('busyThen'), Array.from({ length: 50 }, (_, i) => i), { chunksize: 1 }).catch((e) => e);
    const queued = Array.from({ length: 20 }, (_, i) => pool.apply((x: number) => x, [i]).catch((e) => e));
    const it = pool.imap((x: number) => x, Array.from({ length: 10_000 }, (_, i) => i));
    await sleep(100);
    const t0 = Date.now();
    await pool.terminate();
    expect(Date.now() - t0).toBeLessThan(5000);
    for (const r of [await stuck, await busy, ...(await Promise.all(queued))]) {
      if (typeof r === 'number') continue; // finished before terminate()
      expect((r as Error).message).toBe(`${name}.terminate: the pool was terminated before this task finished`);
    }
    expect((await stuck as Error).message).toMatch(/terminated/);
    await expect((async () => { for await (const _ of it); })()).rejects.toThrow(/terminated/);
    if (name === 'Pool') {
      expect(activeChildren()).toEqual([]);
      expect(childPids()).toEqual([]);
    }
    expect(() => pool.apply((x: number) => x, [1])).toThrow(/the pool is terminated/);
    await pool.terminate(); // idempotent
  });

  it('close() while a map reads an async input: the map finishes, then join() resolves', async () => {
    const pool = makePool(P, 2);
    async function* slowly() {
      for (let i = 0; i < 5; i++) {
        await sleep(20);
        yield i;
      }
    }
    const result = pool.map((x: number) => x * 2, slowly());
    pool.close();
    await pool.join();
    expect(await result).toEqual([0, 2, 4, 6, 8]);
  });

  it('terminate() does not wait for an endless async input; its map rejects', async () => {
    const pool = makePool(P, 1);
    async function* endless() {
      for (let i = 0; ; i++) {
        await sleep(5);
        yield i;
      }
    }
    const result = pool.map((x: number) => x, endless()).catch((e) => e);
    const it = pool.imap((x: number) => x, endless());
    expect((await it.next()).value).toBe(0);
    await sleep(30);
    await pool.terminate();
    expect(((await result) as Error).message).toMatch(/terminated before this task finished/);
    await expect(it.next()).rejects.toThrow(/terminated/);
  });

  it('leaving an imap early drops its queued tasks; close() and join() then finish', async () => {
    const pool = makePool(P, 1);
    let n = 0;
    for await (const x of pool.imap(task('sleepThen'), Array.from({ length: 200 }, (_, i) => i))) {
      expect(x).toBe(n);
      if (++n === 3) break;
    }
    pool.close();
    const t0 = Date.now();
    await pool.join();
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('Symbol.asyncDispose terminates the pool (as Python\'s with-block does) and waits for its workers', async () => {
    const pool = new P(2);
    expect(await pool.apply((x: number) => x * 2, [21])).toBe(42);
    const pending = pool.apply(task('sleepThen'), [1, 60_000]).catch((e) => e);
    await pool[Symbol.asyncDispose]();
    expect(((await pending) as Error).message).toMatch(/terminated before this task finished/);
    if (name === 'Pool') expect(childPids()).toEqual([]);
  });

  it('an idle pool does not keep the program alive; unfinished work does; await using ends it', async () => {
    // (`await using p2 = ...` where the syntax exists, Node >= 24; the same by hand here.)
    const out = await runNodeOk(`
      import { ${name} } from LIB;
      const pool = new ${name}(2);
      console.log(await pool.apply((x) => x + 1, [1]));
      // Not awaited: the result keeps the program alive until it comes.
      pool.apply((ms) => new Promise((r) => setTimeout(() => r(ms), ms)), [300]).then((v) => console.log('late', v));
      const p2 = new ${name}(1);
      try {
        console.log(await p2.apply((x) => x * 3, [3]));
      } finally {
        await p2[Symbol.asyncDispose]();
      }
    `);
    // It ended (runNodeOk returned), and only after the late result came.
    expect(out.trim().split('\n').sort()).toEqual(['2', '9', 'late 300']);
  });
});
