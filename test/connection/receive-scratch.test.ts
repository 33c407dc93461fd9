// Messages are received into one reused buffer and decoded from there (lib/connection.ts): what a
// receive returns must never share that memory, whatever the sizes and the mix of sync, async and
// nested receives.
import { describe, expect, it } from 'vitest';
import { Pipe, type Connection } from '../../lib/index.js';

function drain(c: Connection): Promise<void> {
  return new Promise((resolve) => {
    const tick = () => (c.bufferedAmount === 0 ? resolve() : setTimeout(tick, 1));
    tick();
  });
}

describe('receiving through the shared scratch', () => {
  it('keeps every received value intact across small, scratch-sized, larger and huge messages', async () => {
    const [a, b] = Pipe();
    const sizes = [10, 70_000, 3, 300_000, 5 * 1024 * 1024, 64 * 1024, 1, 200_000];
    const got: unknown[] = [];
    for (const [k, n] of sizes.entries()) {
      a.send({ k, buf: Buffer.alloc(n, k + 1), nums: Array.from({ length: 20 }, (_, i) => i * k) });
      // Alternate sync and async receives; the big ones take a while for the kernel to pass.
      got.push(k % 2 ? await b.recv() : await new Promise((r) => setImmediate(() => r(b.recvSync()))));
      await drain(a);
    }
    for (const [k, n] of sizes.entries()) {
      const m = got[k] as { k: number; buf: Buffer; nums: number[] };
      expect(m.k).toBe(k);
      expect(m.buf.length).toBe(n);
      expect(m.buf.equals(Buffer.alloc(n, k + 1))).toBe(true); // not overwritten by later receives
      expect(m.nums).toEqual(Array.from({ length: 20 }, (_, i) => i * k));
    }
    a.close();
    b.close();
  });

  it('async receives queued on two connections at once each get their own messages, in order', async () => {
    const [a1, b1] = Pipe();
    const [a2, b2] = Pipe();
    const big = Array.from({ length: 50_000 }, (_, i) => i + 0.5);
    for (let i = 0; i < 20; i++) {
      a1.send({ i, big });
      a2.send({ i, small: 'x'.repeat(i) });
    }
    const p1: Promise<unknown>[] = [];
    const p2: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      p1.push(b1.recv());
      p2.push(b2.recv());
    }
    const r1 = (await Promise.all(p1)) as { i: number; big: number[] }[];
    const r2 = (await Promise.all(p2)) as { i: number; small: string }[];
    r1.forEach((m, i) => {
      expect(m.i).toBe(i);
      expect(m.big).toEqual(big);
    });
    r2.forEach((m, i) => expect(m).toEqual({ i, small: 'x'.repeat(i) }));
    for (const c of [a1, b1, a2, b2]) c.close();
  });
});
