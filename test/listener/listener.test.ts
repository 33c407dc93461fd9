// Listener and Client: addresses (port 0, paths, abstract names, IPv6), accept/close, wait(),
// errors that name the address, connections across processes, and no fd or file left behind.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, ClientSync, Connection, Listener, Pipe, wait } from '../../lib/index.js';
import { LIB, openFds, runNode, runNodeOk } from '../helpers/child.js';

const dir = mkdtempSync(join(tmpdir(), 'mp-listener-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pair(l: Listener, authkey?: string): Promise<[Connection, Connection]> {
  const [a, b] = await Promise.all([l.accept(), Client(l.address, { authkey })]);
  return [a, b];
}

describe('Listener addresses', () => {
  it('TCP port 0: bound when the constructor returns, address holds the real port', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const [host, port] = l.address as [string, number];
    expect(host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(0);
    expect(l.family).toBe('AF_INET');
    // Bound and listening already: a client connects before accept() is called.
    const client = await Client(['127.0.0.1', port]);
    const server = await l.accept();
    expect(l.lastAccepted).toEqual(['127.0.0.1', expect.any(Number)]);
    server.send({ hello: 'tcp' });
    expect(await client.recv()).toEqual({ hello: 'tcp' });
    for (const x of [client, server, l]) x.close();
  });

  it('IPv6 loopback, and host names (localhost)', async () => {
    const l6 = new Listener({ address: ['::1', 0] });
    expect(l6.family).toBe('AF_INET6');
    const [a, b] = await pair(l6);
    a.send(6);
    expect(await b.recv()).toBe(6);
    const l4 = new Listener({ address: ['localhost', 0] });
    const port = (l4.address as [string, number])[1];
    const [c, d] = await Promise.all([l4.accept(), Client(['localhost', port])]);
    c.send(4);
    expect(await d.recv()).toBe(4);
    for (const x of [a, b, c, d, l6, l4]) x.close();
  });

  it('AF_UNIX path: the socket file exists while listening and is removed by close()', async () => {
    const path = join(dir, 'a.sock');
    const l = new Listener({ address: path });
    expect(l.address).toBe(path);
    expect(l.family).toBe('AF_UNIX');
    expect(existsSync(path)).toBe(true);
    const [a, b] = await pair(l);
    expect(l.lastAccepted).toBe('');
    b.sendBytes(Buffer.from('unix'));
    expect((await a.recvBytes()).toString()).toBe('unix');
    l.close();
    expect(existsSync(path)).toBe(false);
    // Connections outlive their listener.
    a.send('still here');
    expect(await b.recv()).toBe('still here');
    a.close();
    b.close();
  });

  it('no address: a fresh socket path in the temp dir, removed on close and when the process exits', async () => {
    const l = new Listener();
    expect(typeof l.address).toBe('string');
    expect(l.address as string).toMatch(/multiproc-listener-\d+-[0-9a-f]+$/);
    const [a, b] = await pair(l);
    a.close();
    b.close();
    l.close();
    expect(existsSync(l.address as string)).toBe(false);
    const path = (await runNodeOk(`
      import { Listener } from LIB;
      const l = new Listener();
      console.log(l.address);
    `)).trim();
    expect(path).toMatch(/multiproc-listener-/);
    expect(existsSync(path)).toBe(false);
  });

  it.runIf(process.platform === 'linux')('Linux abstract addresses (a leading NUL) leave no file', async () => {
    const name = `\0multiproc-test-${process.pid}-${Math.random()}`;
    const l = new Listener({ address: name });
    expect(l.address).toBe(name);
    expect(String(l)).toBe(`<Listener @${name.slice(1)}>`);
    const [a, b] = await pair(l, undefined);
    a.send([1, 2]);
    expect(await b.recv()).toEqual([1, 2]);
    for (const x of [a, b, l]) x.close();
  });

  it('family given explicitly must fit the address', () => {
    expect(() => new Listener({ address: ['127.0.0.1', 0], family: 'AF_UNIX' })).toThrow(/family AF_UNIX does not fit the address \["127.0.0.1",0\]/);
    expect(() => new Listener({ address: 'x', family: 'AF_INET' })).toThrow(/AF_UNIX takes a path, AF_INET\/AF_INET6 take \[host, port\]/);
    expect(() => new Listener({ address: 5 as never })).toThrow(/Listener: address must be a socket path \(string\) or \[host, port\], got 5/);
    expect(() => new Listener({ address: ['127.0.0.1', 70000] })).toThrow(/port must be 0 to 65535, got 70000/);
    expect(() => new Listener({ family: 'AF_IPX' as never })).toThrow(/family must be 'AF_UNIX', 'AF_INET' or 'AF_INET6'/);
    const l = new Listener({ family: 'AF_INET' });
    expect(l.address).toEqual(['127.0.0.1', expect.any(Number)]);
    l.close();
  });
});

describe('errors name the address and the fix', () => {
  it('EADDRINUSE: a port or a path already taken', () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const err = (() => {
      try {
        new Listener({ address: l.address as [string, number] });
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
    })();
    expect(err?.message).toMatch(/^Listener: bind 127\.0\.0\.1:\d+ failed: Address already in use \(EADDRINUSE\): another socket is bound there/);
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    l.close();
    const path = join(dir, 'stale.sock');
    writeFileSync(path, '');
    expect(() => new Listener({ address: path })).toThrow(/bind .*stale\.sock failed: Address already in use \(EADDRINUSE\)/);
  });

  it('a path too long for AF_UNIX', () => {
    expect(() => new Listener({ address: join(dir, 'x'.repeat(200)) })).toThrow(/AF_UNIX paths are short \(at most 107 bytes\)/);
  });

  it('ECONNREFUSED and ENOENT from Client', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const addr = l.address as [string, number];
    l.close();
    const e1 = await Client(addr).catch((e) => e);
    expect(e1.message).toBe(`Client(127.0.0.1:${addr[1]}): connect 127.0.0.1:${addr[1]} failed: Connection refused (ECONNREFUSED): nothing listens there: start the Listener (or manager) first, or check the address`);
    expect(e1).toMatchObject({ code: 'ECONNREFUSED', errno: expect.any(Number), syscall: 'connect' });
    const e2 = await Client(join(dir, 'nobody.sock')).catch((e) => e);
    expect(e2.message).toMatch(/connect .*nobody\.sock failed: No such file or directory \(ENOENT\): no socket exists at that path/);
    const e3 = await Client(['no-such-host.invalid', 1]).catch((e) => e);
    expect(e3.message).toMatch(/^Client\(no-such-host\.invalid:1\): .*no-such-host\.invalid:1 failed: .*ENOTFOUND/);
  });
});

describe('accept and close', () => {
  it('pending accepts are served in order; close() rejects the rest and is idempotent', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const first = l.accept();
    const second = l.accept();
    const third = l.accept();
    const c1 = await Client(l.address);
    c1.send('one');
    const c2 = await Client(l.address);
    c2.send('two');
    expect(await (await first).recv()).toBe('one');
    expect(await (await second).recv()).toBe('two');
    l.close();
    l.close();
    expect(l.closed).toBe(true);
    await expect(third).rejects.toThrow(/^Listener.accept: the listener on 127\.0\.0\.1:\d+ is closed; create a new Listener$/);
    await expect(l.accept()).rejects.toThrow(/is closed/);
    for (const c of [c1, c2, await first, await second]) c.close();
  });

  it('a pending accept keeps the process alive; an idle listener does not', async () => {
    const out = await runNodeOk(`
      import { Listener, Client } from LIB;
      const idle = new Listener();            // never accepted from: the process still ends
      const l = new Listener({ address: ['127.0.0.1', 0] });
      l.accept().then((c) => { console.log('accepted'); c.close(); l.close(); });
      setTimeout(() => Client(l.address).then((c) => c.close()), 200);
    `);
    expect(out.trim()).toBe('accepted');
  });

  it('wait() takes Listeners: ready when a connection is pending', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const [p, q] = Pipe();
    expect(await wait([l, p], 50)).toEqual([]);
    const waiting = wait([l, p]);
    const c = await Client(l.address);
    expect(await waiting).toEqual([l]);
    const s = await l.accept();
    expect(await wait([l], 0)).toEqual([]);
    q.send('x');
    expect(await wait([l, p])).toEqual([p]);
    l.close();
    expect(await wait([l], 0)).toEqual([l]); // closed: accept() would not block (it rejects)
    for (const x of [p, q, c, s]) x.close();
  });

  it('a Client in another process, on TCP and AF_UNIX, with an authkey', async () => {
    for (const address of [['127.0.0.1', 0] as [string, number], join(dir, 'child.sock')]) {
      const l = new Listener({ address, authkey: 'secret' });
      const child = runNodeOk(`
        import { Client } from LIB;
        const c = await Client(${JSON.stringify(l.address)}, { authkey: 'secret' });
        c.send({ pid: process.pid, big: Buffer.alloc(2 * 1024 * 1024, 7) });
        console.log(await c.recv());
        c.close();
      `);
      const conn = await l.accept();
      const m = (await conn.recv()) as { pid: number; big: Buffer };
      expect(m.big.length).toBe(2 * 1024 * 1024);
      conn.send(`hello ${m.pid}`);
      expect((await child).trim()).toBe(`hello ${m.pid}`);
      conn.close();
      l.close();
    }
  });

  it('leaves no fd open: listeners, accepted and client connections, failed connects and handshakes', async () => {
    const before = openFds().length;
    for (let i = 0; i < 20; i++) {
      const l = new Listener({ address: i % 2 ? ['127.0.0.1', 0] : join(dir, `leak-${i}.sock`), authkey: 'k' });
      const [a, b] = await pair(l, 'k');
      const bad = l.accept().catch(() => {});
      await Client(l.address, { authkey: 'wrong' }).catch(() => {});
      await bad;
      const pending = l.accept().catch(() => {});
      l.close();
      await pending;
      await Client(l.address).catch(() => {});
      a.close();
      b.close();
    }
    expect(openFds().length).toBe(before);
  });
});

describe('worker threads', () => {
  it('a worker that ends with a Listener accepting and a Client connecting leaves no fd and crashes nothing', async () => {
    const out = await runNodeOk(`
      import { Worker } from 'node:worker_threads';
      import { readdirSync } from 'node:fs';
      const fds = () => readdirSync('/proc/self/fd').length;
      const code = \`
        const { Listener, Client } = await import('multiproc');
        const { parentPort } = await import('node:worker_threads');
        const l = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
        const [a, b] = await Promise.all([l.accept(), Client(l.address, { authkey: 'k' })]);
        a.send('hi');
        const got = await b.recv();
        l.accept(); // pending when the worker ends
        const l2 = new Listener({ address: ['127.0.0.1', 0], authkey: 'k' });
        Client(l2.address, { authkey: 'k' }).catch(() => {}); // mid-handshake when the worker ends
        parentPort.postMessage(got);
        if (process.argv.includes('exit')) process.exit(0);
      \`;
      let before;
      const got = [];
      for (let i = -1; i < 4; i++) {
        if (i === 0) before = fds();
        const w = new Worker(code, { eval: true, type: 'module', argv: i % 2 ? ['exit'] : [] });
        got.push(await new Promise((res, rej) => { w.on('message', res); w.on('error', rej); }));
        if (i % 2 === 0) await w.terminate();
        else await new Promise((r) => w.on('exit', r));
      }
      await new Promise((r) => setTimeout(r, 100));
      console.log(JSON.stringify({ got, leaked: fds() - before }));
    `);
    const r = JSON.parse(out);
    expect(r.got).toEqual(Array(5).fill('hi'));
    expect(r.leaked).toBe(0);
  });
});

describe('Client', () => {
  it('connects to a full AF_UNIX backlog once the listener accepts (EAGAIN is retried)', async () => {
    const l = new Listener({ address: join(dir, 'backlog.sock'), backlog: 0 });
    const clients = [Client(l.address), Client(l.address), Client(l.address), Client(l.address)];
    await new Promise((r) => setTimeout(r, 100));
    const servers: Connection[] = [];
    for (let i = 0; i < clients.length; i++) servers.push(await l.accept());
    const cs = await Promise.all(clients);
    expect(cs).toHaveLength(4);
    for (const x of [...cs, ...servers, l]) x.close();
  });

  it('ClientSync connects before it returns: without an authkey here, with one to a Listener in another process', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const c = ClientSync(l.address); // the kernel completes it; accept() takes it after
    const s = await l.accept();
    c.send('sync');
    expect(await s.recv()).toBe('sync');
    for (const x of [c, s, l]) x.close();
    // With an authkey the listener must run its side of the handshake: it is in another process.
    const child = runNode(`
      import { Listener } from LIB;
      const l = new Listener({ address: ['localhost', 0], authkey: 'k' });
      console.log(JSON.stringify(l.address));
      const c = await l.accept();
      c.send((await c.recv()) + ' back');
      await c.recv().catch(() => {});
      l.close();
    `);
    const address = await new Promise<[string, number]>((resolve, reject) => {
      child.proc.stdout!.once('data', (d) => resolve(JSON.parse(String(d))));
      void child.done.then((r) => reject(new Error(r.stderr)));
    });
    const cs = ClientSync(['localhost', address[1]], { authkey: 'k' });
    cs.send('blocking');
    expect(cs.recvSync()).toBe('blocking back');
    cs.close();
    expect((await child.done).code).toBe(0);
    expect(() => ClientSync(join(dir, 'nobody.sock'))).toThrow(/^ClientSync\(.*nobody\.sock\): connect .*nobody\.sock failed: No such file or directory \(ENOENT\)/);
    expect(() => ClientSync(['no-such-host.invalid', 1])).toThrow(/ENOTFOUND/);
  });

  it('checks its arguments', async () => {
    await expect(Client(42 as never)).rejects.toThrow(/Client: address must be a socket path \(string\) or \[host, port\], got 42/);
    await expect(Client('/x', { authkey: {} as never })).rejects.toThrow(/Client: authkey must be a Buffer/);
  });

  it('gives a Connection like Pipe\'s: it travels to another process', async () => {
    const l = new Listener({ address: ['127.0.0.1', 0] });
    const [a, b] = await pair(l);
    const out = runNodeOk(`
      import { Connection } from LIB;
      const c = new Connection(3);
      c.send((await c.recv()) * 2);
      c.close();
    `, { fds: [b.fileno()] });
    a.send(21);
    expect(await a.recv()).toBe(42);
    await out;
    for (const x of [a, b, l]) x.close();
  });
});

void LIB;
