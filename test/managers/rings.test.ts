// A local manager's clients talk to it over two shared-memory rings per process (lib/ring-duplex.ts)
// with eventfd doorbells, and over the socket from worker threads. What the rings must do as the
// socket did: big messages, more requests than a ring holds, sync calls among async ones in
// flight, a server that sleeps between calls, and either side dying.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { EOFError, Manager, Pipe, Process, type SyncManager } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { linkModeOf } from '../../lib/manager-client.js';
import { LIB } from '../helpers/child.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a local manager over rings', () => {
  let m: SyncManager;
  beforeAll(async () => {
    m = await Manager();
  });
  afterAll(async () => {
    await m.shutdown();
  });

  it('the main thread uses the rings; a worker thread uses the socket, and both see the same objects', async () => {
    const d = await m.dict();
    await d.set('a', 1);
    expect(linkModeOf(m.address as string)).toBe('rings');
    // A worker thread gets the proxy as a Process child would: through a Connection.
    const [here, there] = Pipe();
    const t = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads');
      (async () => {
        const lib = await import(workerData.lib);
        const { linkModeOf } = await import(new URL('manager-client.js', workerData.lib).href);
        const conn = new lib.Connection(workerData.fd);
        const d = await conn.recv();
        d.setSync('b', d.getSync('a') + 1);
        await d.set('c', 3);
        parentPort.postMessage(linkModeOf(workerData.address));
        conn.close();
      })().catch((e) => parentPort.postMessage(String(e)));
    `, { eval: true, workerData: { lib: LIB, fd: native.dupFd(there.fileno()), address: m.address } });
    here.send(d);
    const mode = await new Promise((r) => t.once('message', r));
    expect(mode).toBe('socket');
    await new Promise((r) => t.once('exit', r));
    expect(await d.get('b')).toBe(2);
    expect(d.getSync('c')).toBe(3);
    here.close();
    there.close();
  });

  it('values larger than half a ring go both ways exact, sync and async', async () => {
    const d = await m.dict();
    const big = Buffer.alloc(2 << 20);
    for (let i = 0; i < big.length; i += 977) big[i] = i & 255;
    d.setSync('big', big);
    expect(Buffer.compare(Buffer.from(await d.get('big')), big)).toBe(0);
    const s = 'é'.repeat(300_000);
    await d.set('s', s);
    expect(d.getSync('s')).toBe(s);
  });

  it('more requests than the ring holds, not awaited, then a …Sync call: all arrive, in order', async () => {
    const d = await m.dict();
    const value = 'x'.repeat(4096);
    const sets: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) sets.push(d.set('k', `${i}:${value}`)); // 1.6 MB of requests
    // Sent after them all: it sees the last one's write.
    expect((d.getSync('k') as string).split(':')[0]).toBe('399');
    await Promise.all(sets);
    const gets = await Promise.all(Array.from({ length: 200 }, (_, i) => d.set(i, i).then(() => d.get(i))));
    expect(gets).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('calls after the server went to sleep wake it (its doorbell), sync and async', async () => {
    const d = await m.dict();
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      d.setSync('n', i);
      await sleep(120);
      expect(await d.get('n')).toBe(i);
      await sleep(120);
      await d.set('n', i + 10);
      await sleep(120);
      expect(d.getSync('n')).toBe(i + 10);
    }
  });

  it('a client process killed while it calls without pause: the server goes on serving the others', async () => {
    const d = await m.dict();
    const hammer = new Process({
      target: (d: { setSync(k: unknown, v: unknown): void }) => {
        for (let i = 0; ; i++) d.setSync('h', i);
      },
      args: [d],
    });
    hammer.start();
    const t0 = Date.now();
    while (d.getSync('h', -1) === -1 && Date.now() - t0 < 20_000) await sleep(10);
    expect(d.getSync('h')).toBeGreaterThanOrEqual(0);
    hammer.kill();
    await hammer.join();
    const last = d.getSync('h');
    await d.set('after', last);
    expect(await d.get('after')).toBe(last);
    for (let i = 0; i < 100; i++) d.setSync(i, i);
    expect(d.getSync(99)).toBe(99);
  });
});

describe('a local manager killed under a ring client', () => {
  it('an async call pending in the server rejects with EOFError, no hang', async () => {
    const m = await Manager();
    const { pid } = await m._serverInfo();
    const q = await m.Queue();
    const pending = q.get().then(() => 'got', (e) => e);
    await sleep(150); // the call waits in the server; this process sleeps on its doorbell
    process.kill(pid, 'SIGKILL');
    const err = await pending;
    expect(err).toBeInstanceOf(EOFError);
    expect((err as Error).message).toMatch(/is gone: its connection closed/);
    await m.shutdown();
  });
});
