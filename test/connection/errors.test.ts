// Errors a user can cause: closed connections, uncloneable values, a peer that is gone.
import { describe, expect, it } from 'vitest';
import { openSync, closeSync } from 'node:fs';
import { Pipe, Connection, EOFError, Process } from '../../lib/index.js';

describe('a closed Connection', () => {
  it('throws from every method, naming the connection, and close() is idempotent', async () => {
    const [a, b] = Pipe();
    const fd = a.fileno();
    a.close();
    a.close();
    expect(a.closed).toBe(true);
    const msg = new RegExp(`the connection \\(fd ${fd}\\) is closed; open a new one with Pipe\\(\\) or Client\\(\\)`);
    expect(() => a.send(1)).toThrow(msg);
    expect(() => a.sendBytes(Buffer.alloc(1))).toThrow(msg);
    expect(() => a.recvSync()).toThrow(msg);
    expect(() => a.recvBytesSync()).toThrow(msg);
    expect(() => a.recvBytesIntoSync(Buffer.alloc(1))).toThrow(msg);
    expect(() => a.pollSync()).toThrow(msg);
    expect(() => a.fileno()).toThrow(msg);
    await expect(a.recv()).rejects.toThrow(msg);
    await expect(a.recvBytes()).rejects.toThrow(msg);
    await expect(a.recvBytesInto(Buffer.alloc(1))).rejects.toThrow(msg);
    await expect(a.poll()).rejects.toThrow(msg);
    b.close();
  });

  it('rejects receives pending at close()', async () => {
    const [a, b] = Pipe();
    const pending = [a.recv(), a.recvBytes(), a.poll(null)];
    a.close();
    for (const p of pending) await expect(p).rejects.toThrow(/is closed/);
    b.close();
  });

  it('with Symbol.dispose', () => {
    const [a, b] = Pipe();
    {
      using c = a;
      c.send(1);
    }
    expect(a.closed).toBe(true);
    b.close();
  });
});

describe('uncloneable values', () => {
  it('throw a TypeError naming the path at the sender, and the channel stays usable', () => {
    const [a, b] = Pipe();
    expect(() => a.send({ ok: 1, cb: { fn: () => 1 } })).toThrow(TypeError);
    expect(() => a.send({ list: [1, Symbol('s')] })).toThrow(/list\[1\]/);
    expect(() => a.send(new Map([['k', { f() {} }]]))).toThrow(/Connection\.send/);
    a.send('still fine');
    expect(b.recvSync()).toBe('still fine');
    expect(b.pollSync(0)).toBe(false);
    a.close();
    b.close();
  });
});

describe('a peer that is gone', () => {
  it('recv rejects with EOFError once the buffered messages are read', async () => {
    const [a, b] = Pipe();
    const p = new Process({ target: (c) => { c.send('last words'); process.exit(0); }, args: [b] });
    p.start();
    b.close();
    await p.join();
    expect(await a.recv()).toBe('last words');
    await expect(a.recv()).rejects.toBeInstanceOf(EOFError);
    expect(() => a.recvSync()).toThrow(EOFError);
    expect(a.pollSync(0)).toBe(true); // EOF is readable, as in Python
    a.close();
  });

  it('a peer killed with SIGKILL while we wait: the pending recv rejects with EOFError', async () => {
    const [a, b] = Pipe();
    const p = new Process({ target: (c) => new Promise(() => setInterval(() => c, 1000)), args: [b] });
    p.start();
    b.close();
    const pending = a.recv();
    setTimeout(() => p.kill(), 50);
    await expect(pending).rejects.toThrow(/other end closed the connection/);
    await p.join();
    expect(p.exitCode).toBe(-9);
    a.close();
  });

  it('send to a closed peer throws an error with code EPIPE', () => {
    const [a, b] = Pipe();
    b.close();
    expect(() => a.send('x')).toThrow(/the other end of the connection \(fd \d+\) is closed \(EPIPE\)/);
    a.close();
  });

  it('refuses to adopt an fd that is neither pipe nor socket', () => {
    const fd = openSync('/dev/null', 'r');
    expect(() => new Connection(fd)).toThrow(/fd \d+ is not a pipe or a socket/);
    closeSync(fd);
  });
});
