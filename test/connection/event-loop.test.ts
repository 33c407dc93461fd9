// The async API waits on the event loop (never on libuv's thread pool) and send never blocks.
import { describe, expect, it } from 'vitest';
import { Pipe } from '../../lib/index.js';
import { runNode, runNodeOk } from '../helpers/child.js';

describe('async receive', () => {
  it('leaves the event loop free while waiting, and resolves pending receives in order', async () => {
    const [a, b] = Pipe();
    const order: unknown[] = [];
    const all = [b.recv(), b.recvBytes(), b.recv()].map((p, i) => p.then((v) => order.push([i, Buffer.isBuffer(v) ? v.toString() : v])));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await new Promise((r) => setTimeout(r, 100));
    expect(ticks).toBeGreaterThan(3);
    a.send('first');
    a.sendBytes(Buffer.from('second'));
    a.send({ third: 3 });
    await Promise.all(all);
    clearInterval(timer);
    expect(order).toEqual([[0, 'first'], [1, 'second'], [2, { third: 3 }]]);
    a.close();
    b.close();
  });

  it('does not use the thread pool: 32 pending receives with UV_THREADPOOL_SIZE=1 leave fs working', async () => {
    const out = await runNodeOk(
      `import { Pipe } from LIB;
       import { readFile } from 'node:fs/promises';
       const pairs = Array.from({ length: 32 }, () => Pipe());
       const pending = pairs.map(([a]) => a.recv());
       for (let i = 0; i < 20; i++) await readFile(new URL(import.meta.url));
       pairs.forEach(([, b], i) => b.send(i));
       const got = await Promise.all(pending);
       console.log(JSON.stringify({ got }));
       pairs.forEach(([a, b]) => { a.close(); b.close(); });`,
      { env: { UV_THREADPOOL_SIZE: '1' } },
    );
    const { got } = JSON.parse(out);
    expect(got).toEqual([...Array(32).keys()]);
  });

  it('poll resolves true when a message arrives, false after its timeout', async () => {
    const [a, b] = Pipe();
    expect(await b.poll()).toBe(false);
    let t0 = Date.now();
    expect(await b.poll(100)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    setTimeout(() => a.send('x'), 50);
    t0 = Date.now();
    expect(await b.poll(10_000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(b.pollSync(0)).toBe(true);
    expect(b.recvSync()).toBe('x');
    t0 = Date.now();
    expect(b.pollSync(100)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    a.close();
    b.close();
  });

  it('keeps the process alive while a receive is pending, and lets it exit when none is', async () => {
    const [a, b] = Pipe();
    const c = runNode(
      `import { Connection } from LIB;
       const c = new Connection(3);
       console.log('got', await c.recv());`,
      { fds: [b.fileno()] },
    );
    b.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(c.proc.exitCode).toBe(null);
    a.send('wake');
    const r = await c.done;
    expect(r.stdout).toBe('got wake\n');
    expect(r.code).toBe(0);
    a.close();
    const idle = await runNodeOk(
      `import { Pipe } from LIB;
       const [x, y] = Pipe();
       x.send('unread');
       console.log('done');`,
    );
    expect(idle).toBe('done\n');
    // After async receives, the connection keeps reading ahead between them, but an idle one
    // still lets the process exit; what was read ahead is delivered in order.
    const after = await runNodeOk(
      `import { Pipe } from LIB;
       const [x, y] = Pipe();
       x.send(1);
       const first = await y.recv();
       for (let i = 2; i <= 5; i++) x.send(i);
       await new Promise((r) => setTimeout(r, 50));
       const rest = [y.recvSync(), await y.recv(), y.recvSync(), await y.recv()];
       x.send('unread');
       console.log(JSON.stringify([first, ...rest]));`,
    );
    expect(after).toBe('[1,2,3,4,5]\n');
  });
});

describe('send', () => {
  it('never blocks: with a peer that does not read, output is queued and the loop stays free', async () => {
    const [a, b] = Pipe();
    const chunk = Buffer.alloc(1024 * 1024, 3);
    const t0 = Date.now();
    for (let i = 0; i < 32; i++) a.sendBytes(chunk);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(a.bufferedAmount).toBeGreaterThan(16 * 1024 * 1024);
    for (let i = 0; i < 32; i++) expect((await b.recvBytes()).equals(chunk)).toBe(true);
    expect(a.bufferedAmount).toBe(0);
    a.close();
    b.close();
  });

  it('delivers queued output after close(), before the fd closes', async () => {
    const [a, b] = Pipe();
    const c = runNode(
      `import { Connection } from LIB;
       const c = new Connection(3);
       c.sendBytes(Buffer.alloc(16 * 1024 * 1024, 9));
       c.send('end');
       c.close();`,
      { fds: [b.fileno()] },
    );
    b.close();
    await new Promise((r) => setTimeout(r, 200));
    const big = await a.recvBytes();
    expect(big.length).toBe(16 * 1024 * 1024);
    expect(await a.recv()).toBe('end');
    await expect(a.recv()).rejects.toThrow(/other end closed/);
    expect((await c.done).code).toBe(0);
    a.close();
  });
});
