// Pipe(): real socketpairs and OS pipes whose fds a child process inherits.
import { describe, expect, it } from 'vitest';
import { fstatSync, readlinkSync } from 'node:fs';
import { Pipe, Connection } from '../../lib/index.js';
import { runNode, runNodeOk } from '../helpers/child.js';

describe('Pipe', () => {
  it('duplex: a socketpair whose two ends both send and receive', () => {
    const [a, b] = Pipe();
    expect(readlinkSync(`/proc/self/fd/${a.fileno()}`)).toMatch(/^socket:/);
    expect(fstatSync(b.fileno()).isSocket()).toBe(true);
    expect([a.readable, a.writable, b.readable, b.writable]).toEqual([true, true, true, true]);
    a.send('to b');
    b.send('to a');
    expect(b.recvSync()).toBe('to b');
    expect(a.recvSync()).toBe('to a');
    a.close();
    b.close();
  });

  it('simplex: Pipe(false) is an os.pipe, first end receives, second sends', () => {
    const [r, w] = Pipe(false);
    expect(fstatSync(r.fileno()).isFIFO()).toBe(true);
    expect([r.readable, r.writable, w.readable, w.writable]).toEqual([true, false, false, true]);
    w.send({ n: 1 });
    expect(r.recvSync()).toEqual({ n: 1 });
    expect(() => r.send(1)).toThrow(/Connection\.send: this end \(fd \d+\) is read-only/);
    expect(() => w.recvSync()).toThrow(/Connection\.recvSync: this end \(fd \d+\) is write-only/);
    expect(() => w.pollSync()).toThrow(/write-only/);
    r.close();
    w.close();
  });

  it('passes its fds to a child process started with child_process.spawn', async () => {
    const [parent, child] = Pipe();
    const c = runNode(
      `import { Connection } from LIB;
       const conn = new Connection(3);
       const msg = await conn.recv();
       conn.send({ echo: msg, pid: process.pid });
       conn.close();`,
      { fds: [child.fileno()] },
    );
    child.close();
    parent.send(['hello', { deep: [1, 2n, new Date(0)] }]);
    const reply = (await parent.recv()) as { echo: unknown; pid: number };
    expect(reply.echo).toEqual(['hello', { deep: [1, 2n, new Date(0)] }]);
    expect(reply.pid).toBe(c.proc.pid);
    expect((await c.done).code).toBe(0);
    parent.close();
  });

  it('simplex pipe across processes: the child writes, the parent reads', async () => {
    const [r, w] = Pipe(false);
    const c = runNode(
      `import { Connection } from LIB;
       const conn = new Connection(3, { readable: false });
       for (let i = 0; i < 1000; i++) conn.send(i);
       conn.close();`,
      { fds: [w.fileno()] },
    );
    w.close();
    const got: number[] = [];
    for (let i = 0; i < 1000; i++) got.push((await r.recv()) as number);
    expect(got).toEqual([...Array(1000).keys()]);
    await expect(r.recv()).rejects.toThrow(/other end closed/);
    expect((await c.done).code).toBe(0);
    r.close();
  });
});

describe('new Connection(fd)', () => {
  it('adopts an inherited fd and closes it on close()', async () => {
    const [a, b] = Pipe();
    const out = await runNodeOk(
      `import { Connection } from LIB;
       import { fstatSync } from 'node:fs';
       const c = new Connection(3);
       c.send(c.fileno());
       c.close();
       let closed = false;
       try { fstatSync(3); } catch (e) { closed = e.code === 'EBADF'; }
       console.log(JSON.stringify({ closed, isClosed: c.closed }));`,
      { fds: [b.fileno()] },
    );
    b.close();
    expect(a.recvSync()).toBe(3);
    expect(JSON.parse(out)).toEqual({ closed: true, isClosed: true });
    a.close();
  });

  it('refuses a readable flag on the write end of a pipe, and fds that are not pipes or sockets', () => {
    const [r, w] = Pipe(false);
    expect(() => new Connection(w.fileno(), { readable: true, writable: false })).toThrow(/write end of a pipe; it cannot be readable/);
    expect(() => new Connection(r.fileno(), { readable: false, writable: true })).toThrow(/read end of a pipe; it cannot be writable/);
    expect(() => new Connection(0x7fff)).toThrow(/cannot adopt fd 32767/);
    expect(() => new Connection(-1)).toThrow(/non-negative integer/);
    expect(() => new Connection(r.fileno(), { readable: false, writable: false })).toThrow(/at least one of readable and writable/);
    r.close();
    w.close();
  });
});
