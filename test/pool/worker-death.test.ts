// A worker that dies mid-task (SIGKILL, process.exit, a crash) is replaced; the task it was
// running fails with a ProcessError naming the exit code, the tasks queued behind it still run,
// and no result ever hangs.
import { describe, expect, it } from 'vitest';
import { Pipe, Pool, ProcessError, type Connection } from '../../lib/index.js';
import { KINDS, makePool, sleep, task } from '../helpers/pool.js';

describe('Pool worker death', () => {
  it('a worker SIGKILLed mid-task: that task fails with ProcessError -9, the pool replaces the worker', async () => {
    const pool = makePool(Pool, 2);
    const [here, there] = Pipe();
    const victim = pool.apply(task('reportThenWait'), [there, 60_000]);
    const { pid } = (await here.recv()) as { pid: number };
    process.kill(pid, 'SIGKILL');
    const err = await victim.catch((e) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.message).toMatch(new RegExp(`SpawnPoolWorker-\\d+ \\(pid ${pid}\\) ended with exit code -9 \\(killed by SIGKILL\\) while running this task`));
    expect(err.exitCode).toBe(-9);
    // The pool goes on with two workers, none of them the dead one.
    const pids = await pool.map(task('whereAmI'), [1, 2, 3, 4, 5, 6], { chunksize: 1 });
    expect(pids.map((r) => r.pid)).not.toContain(pid);
    await sleep(100);
    expect(new Set((await pool.map((x: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      return process.pid + x * 0;
    }, [1, 2, 3, 4], { chunksize: 1 }))).size).toBe(2);
    here.close();
    there.close();
  });

  it('an idle worker that is killed is replaced without failing anything', async () => {
    const pool = makePool(Pool, 1);
    const { pid } = await pool.apply(task('whereAmI'), [0]);
    process.kill(pid, 'SIGKILL');
    await sleep(200);
    const r = await pool.apply(task('whereAmI'), [1]);
    expect(r.pid).not.toBe(pid);
    expect(r.x).toBe(1);
  });

  it('a task that crashes the worker with an uncaught error fails with exit code 1', async () => {
    const pool = makePool(Pool, 1);
    const err = await pool.apply(task('crashLater')).catch((e) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.message).toMatch(/ended with exit code 1 while running this task/);
    expect(await pool.apply(task('square'), [3])).toBe(9);
  });

  it('many tasks, workers killed at random: every result settles', async () => {
    const pool = makePool(Pool, 2);
    const results = Array.from({ length: 200 }, (_, i) => pool.apply(task('busyThen'), [i, 2]).then(() => 'ok', (e) => (e instanceof ProcessError ? 'died' : `other: ${e}`)));
    for (let k = 0; k < 3; k++) {
      await sleep(60);
      const { pid } = await pool.apply(task('whereAmI'), [0]).catch(() => ({ pid: 0 }));
      if (pid) process.kill(pid, 'SIGKILL');
    }
    const outcomes = await Promise.all(results);
    expect(outcomes.every((o) => o === 'ok' || o === 'died')).toBe(true);
    expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThan(100);
  });
});

describe.each(KINDS)('%s worker exit', (_name, P) => {
  it('process.exit(3) in a task fails that task with exit code 3; the tasks behind it still run', async () => {
    const pool = makePool(P, 1);
    const dying = pool.apply(task('exitWith'), [3]);
    const after = [pool.apply((x: number) => x + 1, [1]), pool.apply((x: number) => x + 2, [1])];
    const err = await dying.catch((e) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.message).toMatch(/worker \S+ \(.+\) ended with exit code 3 while running this task; the pool started a replacement/);
    expect(err.exitCode).toBe(3);
    expect(await Promise.all(after)).toEqual([2, 3]);
  });

  it('a worker that exits inside a chunk fails that chunk, and map rejects', async () => {
    const pool = makePool(P, 2);
    const err = await pool.map((x: number) => {
      if (x === 7) process.exit(5);
      return x;
    }, Array.from({ length: 20 }, (_, i) => i), { chunksize: 4 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.exitCode).toBe(5);
    expect(await pool.map((x: number) => x * 2, [1, 2, 3])).toEqual([2, 4, 6]);
  });

  it('a task that never ends does not stop other workers; terminate() ends it', async () => {
    const pool = makePool(P, 2);
    const [here, there] = Pipe();
    const stuck = pool.apply((c: Connection) => {
      c.send('started');
      for (;;);
    }, [there]).catch((e) => e);
    expect(await here.recv()).toBe('started');
    expect(await pool.map((x: number) => x + 1, [1, 2, 3])).toEqual([2, 3, 4]);
    await pool.terminate();
    expect(((await stuck) as Error).message).toMatch(/terminated before this task finished/);
    here.close();
    there.close();
  });
});
