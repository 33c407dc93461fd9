// Proxies travel: inside messages on a Connection (also the v8 path: a Map holding one), through a
// local Queue, and through a manager's own Queue; each arrives working, against the same object.
import { describe, expect, it } from 'vitest';
import { Pipe, Process, Queue, type SyncManager } from '../../lib/index.js';
import { useManager } from '../helpers/manager.js';

let m: SyncManager;
useManager((x) => (m = x));

describe('proxies travel', () => {
  it('in a message on a Connection, also inside a Map with a Date (the v8 path)', async () => {
    const d = await m.dict();
    const [a, b] = Pipe();
    const p = new Process({
      target: async (c: any) => {
        const plain = await c.recv();
        await plain.d.set('plain', true);
        const map = await c.recv();
        await map.get('d').set('year', map.get('when').getFullYear());
        c.send('done');
      },
      args: [b],
    });
    p.start();
    b.close();
    a.send({ d });
    a.send(new Map<string, unknown>([['d', d], ['when', new Date(2020, 5, 1)]]));
    expect(await a.recv()).toBe('done');
    await p.join();
    a.close();
    expect(await d.copy()).toEqual(new Map<string, unknown>([['plain', true], ['year', 2020]]));
  });

  it('through a local Queue and through a manager Queue', async () => {
    const l = await m.list<string>();
    const local = new Queue();
    const shared = await m.Queue();
    const p = new Process({
      target: async (local: any, shared: any) => {
        const fromLocal = await local.get();
        await fromLocal.append('via a local Queue');
        const fromShared = await shared.get();
        await fromShared.append('via a manager Queue');
      },
      args: [local, shared],
    });
    p.start();
    await local.put(l);
    await shared.put(l);
    await p.join();
    expect(p.exitCode).toBe(0);
    expect(await l.copy()).toEqual(['via a local Queue', 'via a manager Queue']);
    local.close();
  });

  it('outlive the proxy they were sent from (the server keeps the object until they arrive)', async () => {
    const before = await m._numberOfObjects();
    const [a, b] = Pipe();
    let d: any = await m.dict({ k: 'v' });
    a.send(d);
    d = null; // our proxy may be collected: the reference in transit keeps the object
    (globalThis as { gc?: () => void }).gc?.();
    const got = b.recvSync() as any;
    expect(await got.get('k')).toBe('v');
    expect(await m._numberOfObjects()).toBe(before + 1);
    a.close();
    b.close();
  });
});
