// AsyncResult as in Python: get(timeout) rejects with TimeoutError and can be asked again,
// wait(timeout), ready(), successful() (which throws before the result is ready); and
// IMapIterator.next(timeout).
import { describe, expect, it } from 'vitest';
import { AsyncResult, Pool, TimeoutError } from '../../lib/index.js';
import { makePool, task } from '../helpers/pool.js';

describe('AsyncResult', () => {
  it('get(ms), wait(ms), ready() and successful() while pending and once done', async () => {
    const pool = makePool(Pool, 1);
    const r = pool.applyAsync(task('sleepThen'), ['done', 300]);
    expect(r).toBeInstanceOf(AsyncResult);
    expect(r.ready()).toBe(false);
    expect(() => r.successful()).toThrow('AsyncResult.successful: the result is not ready yet; await result.wait() first');
    const err = await r.get(20).catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toBe('AsyncResult.get: the result is not ready after 20 ms');
    expect(await r.wait(10)).toBe(false);
    expect(await r.get()).toBe('done'); // the timeout lost nothing
    expect(r.ready()).toBe(true);
    expect(r.successful()).toBe(true);
    expect(await r.wait(0)).toBe(true);
    expect(await r.get(0)).toBe('done');
  });

  it('a failed result: successful() false, get() rejects every time', async () => {
    const pool = makePool(Pool, 1);
    const r = pool.applyAsync(() => {
      throw new Error('failed task');
    });
    expect(await r.wait()).toBe(true);
    expect(r.successful()).toBe(false);
    await expect(r.get()).rejects.toThrow('failed task');
    await expect(r.get(5)).rejects.toThrow('failed task');
  });

  it('a failed result nobody asks for is no unhandled rejection', async () => {
    const pool = makePool(Pool, 1);
    const unhandled: unknown[] = [];
    const on = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', on);
    try {
      const r = pool.applyAsync(() => {
        throw new Error('ignored');
      });
      pool.mapAsync((x: number) => {
        throw new Error(`ignored ${x}`);
      }, [1, 2]);
      await r.wait();
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      process.off('unhandledRejection', on);
    }
    expect(unhandled).toEqual([]);
  });

  it('bad timeouts reject, naming the method', async () => {
    const pool = makePool(Pool, 1);
    const r = pool.applyAsync(task('sleepThen'), [1, 50]);
    await expect(r.get('soon' as never)).rejects.toThrow('AsyncResult.get: the timeout must be a number of milliseconds, got soon');
    await expect(r.wait(NaN)).rejects.toThrow('AsyncResult.wait: the timeout must be a number of milliseconds, got NaN');
    expect(await r.get()).toBe(1);
  });

  it('IMapIterator.next(ms) times out without losing the result', async () => {
    const pool = makePool(Pool, 1);
    const it = pool.imap(task('sleepThen'), [1], {});
    // sleepThen(1, undefined): no delay, but a fresh worker takes a moment to start.
    const slow = pool.imap((ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)), [250]);
    expect((await it.next()).value).toBe(1);
    await expect(slow.next(10)).rejects.toBeInstanceOf(TimeoutError);
    expect(await slow.next()).toEqual({ done: false, value: 250 });
    expect((await slow.next()).done).toBe(true);
  });
});
