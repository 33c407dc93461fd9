// send/recv: structured clones cross a real process boundary, in order, at any size.
import { describe, expect, it, afterAll } from 'vitest';
import { Pipe, Process } from '../../lib/index.js';

// One echo process for the file: it sends back every message it receives, until EOF.
const [conn, far] = Pipe();
const echo = new Process({
  // (Targets in test files stay free of import(): vitest rewrites it in the source it compiles.)
  target: async (c) => {
    for (;;) {
      let m;
      try { m = await c.recvBytes(); } catch (e) { if ((e as Error).name === 'EOFError') break; throw e; }
      c.sendBytes(m);
    }
    c.close();
  },
  args: [far],
});
echo.start();
far.close();
afterAll(async () => {
  conn.close();
  await echo.join();
  expect(echo.exitCode).toBe(0);
});

const values: [string, unknown][] = [
  ['int', 42],
  ['-0', -0],
  ['NaN', NaN],
  ['string with lone surrogate', 'a\ud800b'],
  ['unicode', 'héllo ✓ 𝄞'],
  ['nested', { a: [1, 'two', { three: 3 }], b: null, c: undefined, d: true }],
  ['Map/Set/Date/RegExp/BigInt', { m: new Map([[1, { s: new Set(['x']) }]]), d: new Date(123), r: /a+b/gi, big: 2n ** 70n }],
  ['Buffer', Buffer.from('bytes')],
  ['Float64Array', new Float64Array([1.5, -2, Infinity])],
  ['sparse array', [1, , 3]], // eslint-disable-line no-sparse-arrays
  ['Error', new RangeError('boom')],
];

describe('send / recv', () => {
  for (const [label, value] of values) {
    it(`round-trips ${label} through a child (async recv)`, async () => {
      conn.send(value);
      const back = await conn.recv();
      if (value instanceof Error) {
        expect(back).toBeInstanceOf(RangeError);
        expect((back as Error).message).toBe('boom');
      } else {
        expect(back).toStrictEqual(value);
      }
      if (Object.is(value, -0)) expect(Object.is(back, -0)).toBe(true);
    });
  }

  it('preserves object identity inside one message (cycles and aliases)', () => {
    const shared = { v: 1 };
    const cyc: { self?: unknown; a: unknown; b: unknown } = { a: shared, b: shared };
    cyc.self = cyc;
    conn.send(cyc);
    const back = conn.recvSync() as typeof cyc;
    expect(back.self).toBe(back);
    expect(back.a).toBe(back.b);
  });

  it('keeps order over 10,000 messages sent without waiting, sync and async mixed', async () => {
    for (let i = 0; i < 10_000; i++) conn.send({ i });
    for (let i = 0; i < 10_000; i++) {
      const m = (i % 2 ? conn.recvSync() : await conn.recv()) as { i: number };
      expect(m.i).toBe(i);
    }
  });

  it('carries a 64 MiB message both ways, with the event loop free meanwhile', async () => {
    const big = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    big[big.length - 1] = 0xab;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    conn.send(big); // returns at once: the kernel takes a little, the rest is queued
    expect(conn.bufferedAmount).toBeGreaterThan(0);
    const back = (await conn.recv()) as Buffer;
    clearInterval(timer);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
    expect(ticks).toBeGreaterThan(0);
    expect(conn.bufferedAmount).toBe(0);
  });

  it('carries a 64 MiB message with recvSync (queued output is flushed while it blocks)', () => {
    const big = Buffer.alloc(64 * 1024 * 1024, 0x5a);
    conn.sendBytes(big);
    const back = conn.recvBytesSync();
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
  });

  it('sends and receives within one process over one Pipe, big messages included', () => {
    const [a, b] = Pipe();
    const big = Buffer.alloc(8 * 1024 * 1024, 1);
    a.send(big);
    a.send('after');
    expect((b.recvSync() as Buffer).length).toBe(big.length);
    expect(b.recvSync()).toBe('after');
    a.close();
    b.close();
  });
});
