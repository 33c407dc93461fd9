// A plain Queue passed to Pool and ThreadPool tasks works (Python raises RuntimeError here and
// needs a Manager().Queue()): the seed's writer and reader on one pool, and workers feeding the
// parent.
import { describe, expect, it } from 'vitest';
import { JoinableQueue, Queue } from '../../lib/index.js';
import { KINDS, makePool } from '../helpers/pool.js';

describe.each(KINDS)('%s with a Queue', (_name, P) => {
  it("the seed's writer and reader tasks share a Queue on one pool", async () => {
    const pool = makePool(P, 2);
    const q = new Queue<string>();
    const write = pool.apply(async (q: Queue<string>) => {
      for (const v of ['A', 'B', 'C']) {
        await q.put(v);
        await new Promise((r) => setTimeout(r, 20));
      }
      return 'written';
    }, [q]);
    const read = pool.apply(async (q: Queue<string>) => {
      const got: string[] = [];
      while (got.length < 3) got.push(await q.get({ timeout: 10_000 }));
      return got;
    }, [q]);
    expect(await write).toBe('written');
    expect(await read).toEqual(['A', 'B', 'C']);
    q.close();
  });

  it('workers put into a Queue that this process reads; a JoinableQueue is joined across them', async () => {
    const pool = makePool(P, 2);
    const q = new Queue<number>();
    const sent = pool.map((args: [Queue<number>, number]) => {
      const [q, i] = args;
      q.putSync(i * i);
      return i;
    }, Array.from({ length: 50 }, (_, i) => [q, i] as [Queue<number>, number]), { chunksize: 5 });
    const got: number[] = [];
    for (let i = 0; i < 50; i++) got.push(await q.get({ timeout: 10_000 }));
    expect((await sent).length).toBe(50);
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i * i).sort((a, b) => a - b));
    q.close();

    const jq = new JoinableQueue<number>();
    for (let i = 0; i < 10; i++) await jq.put(i);
    const done = pool.map(async (jq: JoinableQueue<number>) => {
      let n = 0;
      for (;;) {
        try {
          await jq.get({ timeout: 100 });
        } catch {
          return n;
        }
        n++;
        jq.taskDone();
      }
    }, [jq, jq], { chunksize: 1 });
    await jq.join();
    expect((await done).reduce((a, b) => a + b, 0)).toBe(10);
    jq.close();
  });
});
