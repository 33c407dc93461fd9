// Handles that travel: a Connection reaches an already running process by SCM_RIGHTS.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Connections that travel', () => {
  it('a Connection sent over a Connection reaches a running process and works there', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe } from LIB;
      const [ctrl, ctrlChild] = Pipe();
      const p = new Process({
        target: async (ctrl) => {
          // Already running: receives a brand-new connection end, uses it, and reports.
          const conn = await ctrl.recv();
          const x = await conn.recv();
          conn.send(x * 2);
          ctrl.send({ gotType: conn.constructor.name, readable: conn.readable });
        },
        args: [ctrlChild],
      });
      p.start();
      ctrlChild.close();
      await new Promise((r) => setTimeout(r, 200));
      const [mine, theirs] = Pipe();
      ctrl.send(theirs);
      theirs.close(); // the child holds its own duplicate
      mine.send(21);
      const doubled = await mine.recv();
      const report = await ctrl.recv();
      await p.join();
      console.log(JSON.stringify({ doubled, report, code: p.exitCode }));
    `);
    expect(JSON.parse(out)).toEqual({ doubled: 42, report: { gotType: 'Connection', readable: true }, code: 0 });
  });

  it('many Connections in one message, and simplex ends keep their direction', async () => {
    const out = await runNodeOk(`
      import { Pipe } from LIB;
      const [a, b] = Pipe();
      const pairs = Array.from({ length: 20 }, () => Pipe(false));
      a.send({ writers: pairs.map(([, w]) => w), note: 'x' });
      const got = b.recvSync();
      pairs.forEach(([, w]) => w.close());
      got.writers.forEach((w, i) => w.send(i));
      const back = pairs.map(([r]) => r.recvSync());
      console.log(JSON.stringify({ back, dir: [got.writers[0].readable, got.writers[0].writable] }));
    `);
    expect(JSON.parse(out)).toEqual({ back: [...Array(20).keys()], dir: [false, true] });
  });

  it('handles inside messages that need v8 (Map, Date, the same Connection twice) keep identity', async () => {
    const out = await runNodeOk(`
      import { Pipe, Connection } from LIB;
      const [a, b] = Pipe();
      const [x, y] = Pipe();
      a.send({ when: new Date(5), conn: y, again: y, byName: new Map([['y', y]]), set: new Set([y]) });
      const got = b.recvSync();
      y.close();
      const same = got.conn === got.again && got.byName.get('y') === got.conn && [...got.set][0] === got.conn;
      x.send('through the copy');
      console.log(JSON.stringify({ same, isConn: got.conn instanceof Connection, when: got.when.getTime(), msg: got.conn.recvSync() }));
    `);
    expect(JSON.parse(out)).toEqual({ same: true, isConn: true, when: 5, msg: 'through the copy' });
  });

  it('fds of a message that fails to decode are closed, not leaked', async () => {
    const out = await runNodeOk(`
      import { Pipe } from LIB;
      import { readdirSync } from 'node:fs';
      const count = () => readdirSync('/proc/self/fd').length;
      const [a, b] = Pipe();
      const before = count();
      for (let i = 0; i < 50; i++) {
        const [x, y] = Pipe();
        a.send([x, y]);
        x.close(); y.close();
        b.recvBytesSync(); // bytes only: the fds are never claimed by a decode...
      }
      // ...and stay queued until the connection closes.
      b.close();
      console.log(count() - before);
    `);
    expect(Number(out) <= 0).toBe(true);
  });

  it('a Connection cannot travel over an OS pipe: clear error at the sender', async () => {
    const out = await runNodeOk(`
      import { Pipe } from LIB;
      const [r, w] = Pipe(false);
      const [x] = Pipe();
      try { w.send({ x }); } catch (e) { console.log(e.name, e.message); }
      w.send('still usable');
      console.log(r.recvSync());
    `);
    expect(out).toMatch(/^TypeError Connection\.send: .*needs a socket to travel/);
    expect(out).toMatch(/still usable\n$/);
  });
});
