// A remote manager: one process serves on TCP with an authkey (getServer().serveForever()),
// processes started independently connect(), share objects through it, and one with the wrong
// key is refused before it reaches any object.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { SyncManager } from '../../lib/index.js';
import { runNode, runNodeOk } from '../helpers/child.js';

const DECLARE = `
  import { SyncManager, AuthenticationError } from LIB;
  class RemoteManager extends SyncManager {}
`;

describe('a remote manager on TCP', () => {
  it('is served by one process and used by unrelated ones; a wrong authkey is refused', async () => {
    const server = runNode(`${DECLARE}
      const store = new Map();
      RemoteManager.register('getStore', () => ({
        put(k, v) { store.set(k, v); },
        get(k) { return store.get(k); },
        size() { return store.size; },
      }));
      const m = new RemoteManager({ address: ['127.0.0.1', 0], authkey: 'pass phrase' });
      const server = m.getServer();
      console.log(JSON.stringify(server.address));
      await server.serveForever();
      console.log('stopped with', store.size, 'entries');
    `);
    const address = await new Promise<[string, number]>((resolve, reject) => {
      server.proc.stdout!.once('data', (d) => resolve(JSON.parse(String(d))));
      void server.done.then((r) => reject(new Error(`the server exited: ${r.stderr}`)));
    });
    expect(address[1]).toBeGreaterThan(0);
    const connect = (key: string) => `${DECLARE}
      RemoteManager.register('getStore'); // only used here: no callable
      const m = new RemoteManager({ address: ${JSON.stringify(address)}, authkey: ${JSON.stringify(key)} });
      await m.connect();
    `;

    // A producer: shares a queue through the store and fills it, then exits.
    await runNodeOk(`${connect('pass phrase')}
      const store = await m.getStore();
      await store.put('producer', process.pid);
      const q = await m.Queue();
      await store.put('queue', q);
      for (let i = 0; i < 3; i++) await q.put({ i, big: 'x'.repeat(100000) });
    `);

    // The wrong key: refused at connect(), and nothing was reached.
    const refused = await runNodeOk(`${connect('wrong').replace('await m.connect();', `
      try {
        await m.connect();
        console.log('connected?!');
      } catch (e) {
        console.log(e instanceof AuthenticationError, e.message);
      }`)}
    `);
    expect(refused.trim()).toMatch(/^true RemoteManager\.connect: the manager server at 127\.0\.0\.1:\d+ refused the authkey: Client\(127\.0\.0\.1:\d+\): the authkey handshake failed \(digest sent was rejected\)/);

    // A consumer, started independently: finds the producer's queue and drains it, then stops the server.
    const out = await runNodeOk(`${connect('pass phrase')}
      const store = await m.getStore();
      const q = await store.get('queue');
      const items = [];
      for (let i = 0; i < 3; i++) items.push((await q.get({ timeout: 5000 })).i);
      console.log(typeof (await store.get('producer')), await store.size(), items.join(','));
      await m.shutdown();
    `);
    expect(out.trim()).toBe('number 2 0,1,2');
    const r = await server.done;
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe('stopped with 2 entries');
  });

  it('clients that connect and stall in the handshake hold up nobody', async () => {
    const server = new SyncManager({ address: ['127.0.0.1', 0], authkey: 'k' }).getServer();
    const serving = server.serveForever();
    const [host, port] = server.address as [string, number];
    const stalled = await Promise.all(Array.from({ length: 20 }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect(port, host, () => resolve(s));
    })));
    const m = new SyncManager({ address: server.address, authkey: 'k' });
    await m.connect();
    const d = await m.dict({ ok: true });
    expect(await d.get('ok')).toBe(true);
    for (const s of stalled) s.destroy();
    await m.shutdown(); // asks the server to stop
    await serving;
  });
});
