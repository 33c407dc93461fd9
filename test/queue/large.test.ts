// Items larger than the ring's free space wait for room; items larger than half the ring travel
// in a shared segment of their own (spill). Never a hang, never a torn or dropped item.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('large items', () => {
  it('1 MiB items through a 64 KiB ring, from another process, sync and async, byte for byte', async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      import { readdirSync } from 'node:fs';
      const fdCount = () => readdirSync('/proc/self/fd').length;
      const q = new Queue({ capacityBytes: 65536 });
      const N = 40;
      const p = new Process({
        target: async (q, n) => {
          for (let i = 0; i < n; i++) {
            const b = Buffer.alloc(1 << 20, i);
            b.writeUInt32LE(i, 0);
            if (i % 2) await q.put(b); else q.putSync(b);
          }
          q.putSync({ big: 'y'.repeat(3 << 20), arr: new Array(100000).fill(1.5) });
        },
        args: [q, N],
      });
      const before = fdCount();
      p.start();
      const ok = [];
      for (let i = 0; i < N; i++) {
        const b = i % 2 ? q.getSync() : await q.get();
        ok.push(b.length === 1 << 20 && b.readUInt32LE(0) === i && b[b.length - 1] === (i & 255) && b[12345] === (i & 255));
      }
      const last = q.getSync();
      await p.join();
      console.log(JSON.stringify({
        ok: ok.every(Boolean), lastOk: last.big.length === 3 << 20 && last.arr.length === 100000 && last.arr[99999] === 1.5,
        code: p.exitCode, fdsBack: fdCount() - before, empty: q.empty(), qsize: q.qsize(),
      }));
    `);
    expect(JSON.parse(out)).toEqual({ ok: true, lastOk: true, code: 0, fdsBack: 0, empty: true, qsize: 0 });
  });

  it('random sizes around every boundary (inline, half the ring, spilled) wrap the ring many times', async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      const cap = 4096;
      const q = new Queue({ capacityBytes: cap });
      const sizes = [];
      let seed = 12345;
      const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
      // Encoded Buffer = 6 bytes of header + n; inline records hold up to cap/2 - 8 encoded bytes.
      const edges = [0, 1, 2, 7, 8, 9, cap / 2 - 15, cap / 2 - 14, cap / 2 - 13, cap / 2, cap - 8, cap, 3 * cap];
      for (let i = 0; i < 3000; i++) sizes.push(i % 4 === 0 ? edges[rnd(edges.length)] : rnd(i % 3 ? 200 : 3 * cap));
      const p = new Process({
        target: (q, sizes) => { sizes.forEach((n, i) => q.putSync(Buffer.alloc(n, i & 255))); },
        args: [q, sizes],
      });
      p.start();
      let bad = 0;
      for (let i = 0; i < sizes.length; i++) {
        const b = await q.get({ timeout: 30000 });
        if (b.length !== sizes[i] || (b.length && (b[0] !== (i & 255) || b[b.length - 1] !== (i & 255)))) bad++;
      }
      await p.join();
      console.log(JSON.stringify({ bad, code: p.exitCode, empty: q.empty() }));
    `);
    expect(JSON.parse(out)).toEqual({ bad: 0, code: 0, empty: true });
  });

  it('an item bigger than the free space waits for a get, then goes in whole', async () => {
    const out = await runNodeOk(`
      import { Queue, Full } from LIB;
      const q = new Queue({ capacityBytes: 8192 });
      const item = Buffer.alloc(3000, 1);
      q.putSync(item);
      q.putSync(item);
      let full = false;
      try { q.putNowait(item); } catch (e) { full = e instanceof Full; }
      const t = performance.now();
      const waiting = q.put(Buffer.alloc(3000, 2));
      setTimeout(() => q.getSync(), 100);
      await waiting;
      const waited = performance.now() - t;
      const rest = [q.getSync()[0], q.getSync()[0]];
      console.log(JSON.stringify({ full, waited: waited >= 80, rest, empty: q.empty() }));
    `);
    expect(JSON.parse(out)).toEqual({ full: true, waited: true, rest: [1, 2], empty: true });
  });
});
