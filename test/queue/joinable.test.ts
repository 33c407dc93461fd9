// JoinableQueue: join()/joinSync() wait until every item put is marked done with taskDone();
// one taskDone() too many throws (Python's ValueError). And SimpleQueue's smaller API.
import { describe, expect, it } from 'vitest';
import { JoinableQueue, SimpleQueue } from '../../lib/index.js';
import { runNodeOk } from '../helpers/child.js';

describe('JoinableQueue', () => {
  it('join resolves at once with nothing put; taskDone past zero throws naming the queue', async () => {
    const q = new JoinableQueue();
    await q.join();
    q.joinSync();
    expect(() => q.taskDone()).toThrow("JoinableQueue.taskDone(): called more times than there were items put (Python's ValueError); call it once per item got");
    q.putSync('a');
    q.putSync('b');
    q.getSync();
    q.getSync();
    q.taskDone();
    q.taskDone();
    expect(() => q.taskDone()).toThrow(/called more times than there were items put/);
    await q.join();
    q.close();
    expect(() => q.taskDone()).toThrow(/JoinableQueue\.taskDone\(\): the queue is closed/);
    await expect(q.join()).rejects.toThrow(/JoinableQueue\.join\(\): the queue is closed/);
  });

  it('join waits for the last taskDone, also one done by another process; joinSync too', async () => {
    const out = await runNodeOk(`
      import { JoinableQueue, Process } from LIB;
      const q = new JoinableQueue();
      for (let i = 0; i < 100; i++) q.putSync(i);
      const worker = async (q) => {
        for (let i = 0; i < 50; i++) {
          q.getSync();
          await new Promise((r) => setTimeout(r, 1));
          q.taskDone();
        }
      };
      const ps = [new Process({ target: worker, args: [q] }), new Process({ target: worker, args: [q] })];
      ps.forEach((p) => p.start());
      const t = performance.now();
      await q.join();
      const joinedAfter = performance.now() - t;
      const left = q.qsize();
      for (const p of ps) await p.join();
      // joinSync across processes: a child finishes the task later.
      q.putSync('one more');
      const p = new Process({ target: async (q) => { q.getSync(); await new Promise((r) => setTimeout(r, 200)); q.taskDone(); }, args: [q] });
      p.start();
      const t2 = performance.now();
      q.joinSync();
      const syncWaited = performance.now() - t2;
      await p.join();
      let over;
      try { q.taskDone(); } catch (e) { over = e.message; }
      console.log(JSON.stringify({ joinedAfter: joinedAfter > 20, left, syncWaited: syncWaited >= 150, codes: [...ps, p].map((x) => x.exitCode), over: !!over }));
    `);
    expect(JSON.parse(out)).toEqual({ joinedAfter: true, left: 0, syncWaited: true, codes: [0, 0, 0], over: true });
  });

  it('many pending joins all resolve when the last task is done', async () => {
    const q = new JoinableQueue<number>();
    q.putSync(1);
    let resolved = 0;
    const joins = Array.from({ length: 20 }, () => q.join().then(() => resolved++));
    await new Promise((r) => setTimeout(r, 50));
    expect(resolved).toBe(0);
    q.getSync();
    q.taskDone();
    await Promise.all(joins);
    expect(resolved).toBe(20);
    q.close();
  });
});

describe('SimpleQueue', () => {
  it('put/get/putSync/getSync/empty/close; no Empty/Full surface', async () => {
    const q = new SimpleQueue<unknown>();
    expect(q.empty()).toBe(true);
    await q.put({ a: 1 });
    q.putSync([2]);
    expect(q.empty()).toBe(false);
    expect(await q.get()).toEqual({ a: 1 });
    expect(q.getSync()).toEqual([2]);
    const pending = q.get();
    setTimeout(() => q.putSync('later'), 30);
    expect(await pending).toBe('later');
    expect('getNowait' in q).toBe(false);
    expect('qsize' in q).toBe(false);
    q.close();
    q.close();
    expect(() => q.putSync(1)).toThrow('SimpleQueue.putSync(): the queue is closed');
    expect(() => q.empty()).toThrow(/SimpleQueue\.empty\(\): the queue is closed/);
    expect(() => new SimpleQueue({ maxsize: 3 } as never)).toThrow('SimpleQueue: maxsize is not an option of a SimpleQueue, which has no limit by count; use a Queue for one');
  });
});
