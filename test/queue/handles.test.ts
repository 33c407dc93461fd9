// Queues travel everywhere (Process args, through another Queue or a Connection), and handles
// (Connections, locks, events, queues) travel through a Queue: their fds go on the queue's own
// socketpair, so they arrive also after the process that put them has exited.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('Queues that travel', () => {
  it('a Queue through a Connection, through another Queue, and in Process args all reach the same ring', async () => {
    const out = await runNodeOk(`
      import { Queue, JoinableQueue, SimpleQueue, Process, Pipe } from LIB;
      const [here, there] = Pipe();
      const q = new Queue(), j = new JoinableQueue(), s = new SimpleQueue(), carrier = new Queue();
      const p = new Process({
        target: async (conn, carrier) => {
          const { q, j } = await conn.recv();
          const s = carrier.getSync();
          q.putSync('via connection');
          j.putSync('joinable');
          await s.put('simple via queue');
          conn.send([q.constructor.name, j.constructor.name, s.constructor.name]);
          j.joinSync();
        },
        args: [there, carrier],
      });
      p.start();
      here.send({ q, j });
      carrier.putSync(s);
      const got = [await q.get(), j.getSync(), await s.get(), await here.recv()];
      j.taskDone();
      await p.join();
      console.log(JSON.stringify({ got, code: p.exitCode }));
    `);
    expect(JSON.parse(out)).toEqual({
      got: ['via connection', 'joinable', 'simple via queue', ['Queue', 'JoinableQueue', 'SimpleQueue']],
      code: 0,
    });
  });

  it('Connections, a Lock and an Event through a Queue work on the other side, after their sender has exited', async () => {
    const out = await runNodeOk(`
      import { Queue, Process, Pipe, Lock, Event } from LIB;
      import { readdirSync } from 'node:fs';
      const fdCount = () => readdirSync('/proc/self/fd').length;
      const q = new Queue();
      const before = fdCount();
      const p = new Process({
        target: async (q) => {
          const { Pipe, Lock, Event } = await import('multiproc');
          const [a, b] = Pipe();
          const lock = new Lock(), ev = new Event();
          lock.acquireSync();
          // A Map forces the v8 path of the codec: handles travel there too.
          q.putSync({ conn: a, lock, ev, note: new Map([['k', b]]) });
          a.close();
          b.send('from the dead producer');
        },
        args: [q],
      });
      p.start();
      await p.join();
      const { conn, lock, ev, note } = await q.get();
      const msg = await conn.recv();
      note.get('k').send('back');
      const echoed = await conn.recv();
      // The producer held the lock when it exited: the Lock is robust, so this takes it over.
      const took = lock.acquireSync({ timeout: 10000 });
      ev.set();
      const isSet = ev.isSet();
      conn.close(); note.get('k').close();
      console.log(JSON.stringify({ msg, echoed, took, isSet, code: p.exitCode, fds: fdCount() - before }));
    `);
    const r = JSON.parse(out);
    expect(r).toMatchObject({ msg: 'from the dead producer', echoed: 'back', took: true, isSet: true, code: 0 });
    // What stays open here: the Lock's and Event's segments (freed when collected).
    expect(r.fds).toBeLessThanOrEqual(2);
  });

  it('a Queue put into itself, and many handle-carrying items interleaved with plain ones', async () => {
    const out = await runNodeOk(`
      import { Queue, Pipe } from LIB;
      import { readdirSync } from 'node:fs';
      const fdCount = () => readdirSync('/proc/self/fd').length;
      const q = new Queue({ capacityBytes: 4096 });
      q.putSync(q);
      const q2 = q.getSync();
      q2.putSync('through the copy');
      const viaCopy = q.getSync();
      q2.close();
      const before = fdCount();
      const log = [];
      for (let round = 0; round < 30; round++) {
        const pairs = [];
        for (let i = 0; i < 8; i++) {
          if (i % 2) { q.putSync(i); continue; }
          const [a, b] = Pipe();
          pairs.push(b);
          q.putSync({ i, a, big: i === 4 ? Buffer.alloc(10000, 1) : null });
          a.close();
        }
        for (let i = 0; i < 8; i++) {
          const x = q.getSync();
          if (typeof x === 'number') { log.push(x === i); continue; }
          x.a.send(x.i);
          const b = pairs.shift();
          log.push(b.recvSync() === i && (i !== 4 || x.big.length === 10000));
          x.a.close();
          b.close();
        }
      }
      console.log(JSON.stringify({ viaCopy, ok: log.every(Boolean), n: log.length, fds: fdCount() - before }));
    `);
    expect(JSON.parse(out)).toEqual({ viaCopy: 'through the copy', ok: true, n: 240, fds: 0 });
  });

  it('an item whose handle lost its fd fails its put with a message naming it; the queue goes on', async () => {
    const out = await runNodeOk(`
      import { Queue, Pipe } from LIB;
      import { native } from ${JSON.stringify(new URL('../../dist/native.js', import.meta.url).href)};
      const q = new Queue();
      const [a, b] = Pipe();
      native.closeFd(a.fileno()); // the fd goes away under the Connection
      let err;
      try { q.putSync({ a }); } catch (e) { err = e.message; }
      q.putSync('after');
      console.log(JSON.stringify({ err, next: q.getSync(), qsize: q.qsize() }));
    `);
    const r = JSON.parse(out);
    expect(r.err).toBe("Queue.putSync: the queue cannot take this item's file descriptors: a handle in the item was closed before the put could send it");
    expect(r).toMatchObject({ next: 'after', qsize: 0 });
  });

  it('a closed Queue cannot be sent, and says so', async () => {
    const out = await runNodeOk(`
      import { Queue, Pipe } from LIB;
      const q = new Queue();
      q.close();
      const [a] = Pipe();
      let err;
      try { a.send({ q }); } catch (e) { err = e.message; }
      console.log(JSON.stringify({ err }));
    `);
    expect(JSON.parse(out).err).toMatch(/a closed Queue cannot be sent to another process/);
  });
});
