// A task that throws rejects its own result with an error of the same name and message, the
// worker's stack in `cause`; the pool goes on. Arguments and results that cannot travel fail
// their own task, naming the value. Misused targets say what to do.
import { describe, expect, it } from 'vitest';
import { RemoteTraceback } from '../../lib/index.js';
import { KINDS, makePool, task } from '../helpers/pool.js';

describe.each(KINDS)('%s errors', (name, P) => {
  it('a throwing task rejects with the same name and message, the worker stack in cause; the pool goes on', async () => {
    const pool = makePool(P, 2);
    const err = await pool.apply(function failingTask(x: number) {
      if (x > 0) throw new TypeError(`bad x: ${x}`);
      return x;
    }, [5]).catch((e) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(err.name).toBe('TypeError');
    expect(err.message).toBe('bad x: 5');
    expect(err.cause).toBeInstanceOf(RemoteTraceback);
    // The worker's stack: the target's frame, in the worker.
    expect(err.cause.message).toMatch(/^TypeError: bad x: 5\n\s+at failingTask/);
    expect(err.cause.stack).toContain(`${name} worker`.replace(' worker', '') === 'Pool' ? 'PoolWorker' : 'ThreadPoolWorker');
    expect(err.stack).toMatch(/at failingTask/);
    expect(await pool.apply((x: number) => x * 2, [21])).toBe(42);
  });

  it('a custom error keeps its name and its own properties; async rejections too', async () => {
    const pool = makePool(P, 2);
    const err = await pool.apply(task('throwCustom'), ['custom trouble']).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('CustomError');
    expect(err.message).toBe('custom trouble');
    expect(err.code).toBe('E_CUSTOM');
    expect(err.detail).toEqual({ n: 1 });
    expect(err.cause.message).toMatch(/CustomError: custom trouble\n\s+at throwCustom/);
    const rejected = await pool.apply(async () => {
      await new Promise((r) => setTimeout(r, 1));
      throw new RangeError('async trouble');
    }).catch((e) => e);
    expect(rejected).toBeInstanceOf(RangeError);
    expect(rejected.message).toBe('async trouble');
  });

  it('a thrown non-Error value is what the result rejects with', async () => {
    const pool = makePool(P, 1);
    await expect(pool.apply(() => {
      throw 42;
    })).rejects.toBe(42);
    await expect(pool.apply(() => {
      throw { reason: 'plain object' };
    })).rejects.toEqual({ reason: 'plain object' });
  });

  it('map rejects with the first failure; imap throws at that position and goes on', async () => {
    const pool = makePool(P, 2);
    const fn = (x: number) => {
      if (x === 3) throw new Error('three');
      return x;
    };
    await expect(pool.map(fn, [1, 2, 3, 4, 5])).rejects.toThrow('three');
    await expect(pool.map(fn, [1, 2, 3, 4, 5], { chunksize: 2 })).rejects.toThrow('three');
    const it = pool.imap(fn, [1, 2, 3, 4, 5]);
    expect((await it.next()).value).toBe(1);
    expect((await it.next()).value).toBe(2);
    await expect(it.next()).rejects.toThrow('three');
    expect((await it.next()).value).toBe(4);
    expect((await it.next()).value).toBe(5);
    expect((await it.next()).done).toBe(true);
    expect(await pool.map((x: number) => x, [7, 8])).toEqual([7, 8]);
  });

  it('callback and errorCallback of applyAsync and mapAsync', async () => {
    const pool = makePool(P, 2);
    const seen: unknown[] = [];
    const ok = pool.applyAsync((x: number) => x + 1, [1], { callback: (r) => seen.push(['ok', r]) });
    const bad = pool.applyAsync(() => {
      throw new Error('nope');
    }, [], { callback: () => seen.push('wrong'), errorCallback: (e) => seen.push(['err', (e as Error).message]) });
    const m = pool.mapAsync((x: number) => x * 3, [1, 2], { callback: (r) => seen.push(['map', r]) });
    await Promise.all([ok.wait(), bad.wait(), m.wait()]);
    expect(seen).toContainEqual(['ok', 2]);
    expect(seen).toContainEqual(['err', 'nope']);
    expect(seen).toContainEqual(['map', [3, 6]]);
    expect(seen).not.toContain('wrong');
  });

  it('arguments that cannot be sent fail their own task, naming the value; the others run', async () => {
    const pool = makePool(P, 2);
    const good = pool.apply((x: number) => x, [1]);
    const bad = pool.apply((x: unknown) => x, [{ f: () => 1 }]);
    await expect(bad).rejects.toThrow(/cannot send a task: cannot send value at args\[0\]\.f \(a function\)/);
    await expect(bad).rejects.toBeInstanceOf(TypeError);
    expect(await good).toBe(1);
    await expect(pool.map((x: unknown) => x, [1, Symbol('s'), 3])).rejects.toThrow(/item 1 of the iterable/);
  });

  it('a pool cannot be sent to a worker (as in Python)', async () => {
    const pool = makePool(P, 1);
    await expect(pool.apply((p: unknown) => p, [pool])).rejects.toThrow(`${name} objects cannot be sent to another process`);
  });

  it('a result that cannot be sent back fails its task with a TypeError', async () => {
    const pool = makePool(P, 1);
    const err = await pool.apply(() => ({ fn() {} })).catch((e) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toMatch(/the task's result cannot be sent back to the pool: .*cannot send value at result\.fn \(a function\)/);
    expect(await pool.apply(() => 'fine')).toBe('fine');
  });

  it("a function that uses the parent's variables, and a missing module export, say how to fix it", async () => {
    const pool = makePool(P, 1);
    const secret = 41;
    const err = await pool.apply(function usesSecret() {
      return secret + 1;
    }).catch((e) => e);
    expect(err.name).toBe('ReferenceError');
    expect(err.message).toMatch(/usesSecret\(\) uses 'secret', which does not exist in the child process/);
    expect(err.message).toMatch(/\{ module, name \}/);
    await expect(pool.apply(task('noSuchExport'))).rejects.toThrow(/has no exported function 'noSuchExport'/);
    expect(await pool.apply(task('square'), [9])).toBe(81);
  });

  it('bad targets and arguments throw at the call', () => {
    const pool = makePool(P, 1);
    expect(() => pool.apply(42 as never)).toThrow(/target must be a function or \{ module, name \}/);
    expect(() => pool.apply(Math.max)).toThrow(/native or bound function/);
    expect(() => pool.apply((x: number) => x, 5 as never)).toThrow(/args must be an array/);
    expect(() => pool.map((x: number) => x, 5 as never)).toThrow(/expected an iterable or an async iterable, got number/);
    expect(() => pool.applyAsync((x: number) => x, [], { callback: 3 as never })).toThrow(/callback must be a function/);
  });
});
