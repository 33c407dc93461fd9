// What queues hold and release: fds (close() and garbage collection), the event loop (a pending
// get keeps the process alive as a pending read does; nothing else does), and never libuv's pool.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { JoinableQueue, Queue, SimpleQueue } from '../../lib/index.js';
import { runNode, runNodeOk } from '../helpers/child.js';

const fdCount = () => readdirSync('/proc/self/fd').length;

describe('queue lifetime', () => {
  it('close() releases the fds of 500 queues that were used', () => {
    const before = fdCount();
    for (let i = 0; i < 500; i++) {
      const q = i % 3 === 0 ? new Queue({ capacityBytes: 4096 }) : i % 3 === 1 ? new SimpleQueue({ capacityBytes: 4096 }) : new JoinableQueue({ capacityBytes: 4096 });
      q.putSync({ i, big: i % 50 === 0 ? Buffer.alloc(10000) : null });
      q.getSync();
      q.close();
    }
    expect(fdCount()).toBe(before);
  });

  it('queues dropped without close() have their fds closed when collected; a child with queues exits by itself', async () => {
    const out = await runNodeOk(
      `import { Queue } from LIB;
       import { readdirSync } from 'node:fs';
       const count = () => readdirSync('/proc/self/fd').length;
       const before = count();
       (() => { for (let i = 0; i < 200; i++) { const q = new Queue({ capacityBytes: 4096 }); q.putSync(i); q.getSync(); } })();
       const held = count() - before;
       for (let i = 0; i < 10 && count() > before; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
       console.log(JSON.stringify({ held: held > 0, left: count() - before }));`,
      { execArgv: ['--expose-gc'] },
    );
    expect(JSON.parse(out)).toEqual({ held: true, left: 0 });
  });

  it('a pending get keeps the process alive until an item comes; closing the queue lets it exit', async () => {
    const waiting = runNode(`
      import { Queue } from LIB;
      const q = new Queue();
      q.get().catch((e) => console.log('rejected: ' + e.message));
      setTimeout(() => q.close(), 300);
    `);
    const t = performance.now();
    const r = await waiting.done;
    expect(r.code).toBe(0);
    expect(performance.now() - t).toBeGreaterThanOrEqual(250);
    expect(r.stdout).toMatch(/rejected: Queue\.get\(\): the queue is closed/);
  });

  it('pending gets of many queues neither block the event loop nor take the libuv thread pool', async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      import { promises as fs } from 'node:fs';
      const qs = Array.from({ length: 50 }, () => new Queue({ capacityBytes: 4096 }));
      const all = qs.map((q) => q.get({ timeout: 60000 }));
      await new Promise((r) => setTimeout(r, 100));
      const t = performance.now();
      for (let i = 0; i < 20; i++) await fs.readFile('/proc/self/stat');
      const fsMs = performance.now() - t;
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      await new Promise((r) => setTimeout(r, 200));
      clearInterval(timer);
      const p = new Process({ target: (qs) => qs.forEach((q, i) => q.putSync(i)), args: [qs] });
      p.start();
      const got = await Promise.all(all);
      await p.join();
      console.log(JSON.stringify({ fsMs, ticks, ok: got.every((v, i) => v === i), code: p.exitCode }));
    `, { env: { UV_THREADPOOL_SIZE: '1' } });
    const r = JSON.parse(out);
    expect(r.fsMs).toBeLessThan(2000);
    expect(r.ticks).toBeGreaterThanOrEqual(5);
    expect(r.ok).toBe(true);
    expect(r.code).toBe(0);
  });
});
