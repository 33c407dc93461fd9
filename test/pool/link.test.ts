// The wire between a pool and its workers (lib/pool-link.ts): two shared-memory rings per worker.
// Messages larger than half a ring spill, tasks that find the ring full wait their turn in order,
// a worker killed while it puts results leaves nothing stuck, and threads waiting for tasks end
// with their process.
import { describe, expect, it } from 'vitest';
import { Pipe, Pool, ProcessError } from '../../lib/index.js';
import { runNodeOk } from '../helpers/child.js';
import { KINDS, makePool, sleep, task } from '../helpers/pool.js';

describe.each(KINDS)('%s wire', (_name, P) => {
  it('arguments and results larger than a ring (spilled) arrive exact, both ways', async () => {
    const pool = makePool(P, 2);
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i * 2654435761 >>> 0, i);
    const back = await pool.apply((b: Buffer) => {
      const out = Buffer.from(b);
      out.reverse();
      return out;
    }, [big]);
    expect(Buffer.compare(Buffer.from(back).reverse(), big)).toBe(0);
    // A result of about 300 KiB from a small argument, and a string of a MiB.
    const made = await pool.apply((n: number) => Array.from({ length: n }, (_, i) => i * 3), [80_000]);
    expect(made.length).toBe(80_000);
    expect(made[79_999]).toBe(239_997);
    expect(await pool.apply((s: string) => s.length, ['x'.repeat(1 << 20)])).toBe(1 << 20);
  });

  it('more work than the rings hold at once: every task arrives, in order, and every result matches', async () => {
    const pool = makePool(P, 2);
    // 60 tasks of 100 KiB each (6 MB) submitted at once: most wait for room in a worker's ring.
    const inputs = Array.from({ length: 60 }, (_, i) => Buffer.alloc(100 << 10, i));
    const sums = await Promise.all(inputs.map((b) => pool.apply((x: Buffer) => x[0]! + x.length + x[x.length - 1]!, [b])));
    expect(sums).toEqual(inputs.map((_, i) => 2 * i + (100 << 10)));
    const mapped = await pool.map((b: Buffer) => b.subarray(0, 8), inputs, { chunksize: 3 });
    expect(mapped.map((b) => Buffer.from(b).readUInt8(7))).toEqual(inputs.map((_, i) => i));
  });

  it('a process whose workers wait for tasks exits at once', async () => {
    const t0 = Date.now();
    const out = await runNodeOk(`
      import { ${P.name} } from LIB;
      const pool = new ${P.name}(2);
      console.log(await pool.apply((x) => x + 1, [1]));
      setTimeout(() => process.exit(0), 50);
    `);
    expect(out.trim()).toBe('2');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('Pool wire, workers killed', () => {
  it('workers SIGKILLed while they put large results: every result settles, the pool goes on', async () => {
    const pool = makePool(Pool, 2);
    const [here, there] = Pipe();
    // Each task reports its pid, then returns 600 KiB (spilled) — many puts in flight.
    const big = (conn: { send(v: unknown): void }, i: number) => {
      conn.send(process.pid);
      return Buffer.alloc(600 << 10, i & 255);
    };
    const results = Array.from({ length: 120 }, (_, i) => pool.apply(big, [there, i]).then(
      (b: Buffer) => (b.length === 600 << 10 && b[b.length - 1] === (i & 255) ? 'ok' : 'corrupt'),
      (e) => (e instanceof ProcessError ? 'died' : `other: ${e}`),
    ));
    const killed = new Set<number>();
    for (let k = 0; k < 4; k++) {
      let pid = 0;
      for (;;) {
        pid = (await here.recv()) as number;
        if (!killed.has(pid)) break;
      }
      killed.add(pid);
      process.kill(pid, 'SIGKILL');
      await sleep(5 + k * 7);
    }
    const outcomes = await Promise.all(results);
    expect(outcomes.filter((o) => o !== 'ok' && o !== 'died')).toEqual([]);
    expect(outcomes.filter((o) => o === 'died').length).toBeGreaterThanOrEqual(1);
    expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThan(60);
    while (here.pollSync(0)) here.recvSync();
    expect(await pool.apply((x: number) => x * 2, [21])).toBe(42);
    here.close();
    there.close();
  }, 60_000);
});
