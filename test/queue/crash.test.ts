// Processes killed in the middle of a put or a get: a torn item is never delivered, no item is
// lost or duplicated, and the queue goes on (its locks are taken over, its counts repaired).
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

const dist = (m: string) => JSON.stringify(new URL(`../../dist/${m}`, import.meta.url).href);
const PATHS = `{ queues: ${dist('queues.js')}, ring: ${dist('queue-ring.js')}, codec: ${dist('codec.js')}, native: ${dist('native.js')} }`;

/**
 * A snippet: for each step 0..4, a child takes one side's lock, does `prepare` (which sets `seq`,
 * the count before, and `end`, the new position), makes the first `step` stores of the commit
 * (journal seq, journal end, count, position) and SIGKILLs itself; then `after` runs here and
 * fills `got`.
 */
function commitWindows(o: { side: 'producer' | 'consumer'; cursor: string[]; before?: string; prepare: string; after: string }): string {
  const [jseq, jend, count, pos] = o.cursor;
  return `
    import { Queue, Process, Pipe } from LIB;
    const paths = ${PATHS};
    const q = new Queue({ capacityBytes: 4096 });
    const results = {};
    for (const step of [0, 1, 2, 3, 4]) {
      ${o.before ?? ''}
      const p = new Process({
        target: async (q, step, paths) => {
          const { ringOf } = await import(paths.queues);
          const { W, HEADER_BYTES, FLAG_FDS, LEN_MASK } = await import(paths.ring);
          const r = ringOf(q), w = r.w;
          if (!r.${o.side}.tryClaim()) throw new Error('${o.side} lock busy');
          ${o.prepare}
          if (step >= 1) Atomics.store(w, W.${jseq}, seq);
          if (step >= 2) Atomics.store(w, W.${jend}, end);
          if (step >= 3) Atomics.store(w, W.${count}, seq + 1);
          if (step >= 4) Atomics.store(w, W.${pos}, end);
          process.kill(process.pid, 'SIGKILL');
        },
        args: [q, step, paths],
      });
      p.start();
      await p.join();
      const qsizeAfterDeath = q.qsize();
      const got = [];
      ${o.after}
      results[step] = { code: p.exitCode, qsizeAfterDeath, got, qsize: q.qsize() };
    }
    console.log(JSON.stringify(results));
  `;
}

describe('a producer or consumer dies at each step of its commit', () => {
  it('producer: killed after writing, after each journal store, after the commit (with fds sent)', async () => {
    const out = await runNodeOk(commitWindows({
      side: 'producer',
      cursor: ['P_JSEQ', 'P_JEND', 'PUT_COUNT', 'TAIL'],
      // A whole record carrying a Connection, its fds sent: all a put does before its commit.
      prepare: `
        const { encode } = await import(paths.codec);
        const { native } = await import(paths.native);
        const { Pipe } = await import('multiproc');
        const [a, b] = Pipe();
        b.send('ghost says hi');
        const fds = [];
        const bytes = encode({ ghost: a }, 'test', fds);
        const T = w[W.TAIL], seq = w[W.PUT_COUNT];
        const tag = w[W.FD_TAG] + 1;
        Atomics.store(w, W.FD_TAG, tag);
        native.fdSend(r.fds.tx, tag, fds, -1);
        let off = T & r.mask, start = T;
        const need = 8 + ((bytes.length + 7) & ~7);
        if (need > r.cap - off) { w[(HEADER_BYTES + off) >> 2] = -1; start = (T + r.cap - off) | 0; off = 0; }
        new Uint8Array(r.buf).set(bytes, HEADER_BYTES + off + 8);
        w[(HEADER_BYTES + off) >> 2] = bytes.length | FLAG_FDS;
        w[((HEADER_BYTES + off) >> 2) + 1] = tag;
        const end = (start + need) | 0;`,
      after: `
        const [c, d] = Pipe();
        d.send('after says hi');
        q.putSync({ after: c });
        c.close(); d.close();
        while (!q.empty()) {
          const m = q.getSync();
          const conn = m.ghost ?? m.after;
          got.push(conn.recvSync());
          conn.close();
        }`,
    }));
    const r = JSON.parse(out);
    for (const step of [0, 1, 2]) expect(r[step]).toEqual({ code: -9, qsizeAfterDeath: 0, got: ['after says hi'], qsize: 0 });
    // Killed between the count and the commit: the count shows the ghost until the next put repairs it.
    expect(r[3]).toEqual({ code: -9, qsizeAfterDeath: 1, got: ['after says hi'], qsize: 0 });
    expect(r[4]).toEqual({ code: -9, qsizeAfterDeath: 1, got: ['ghost says hi', 'after says hi'], qsize: 0 });
  });

  it('consumer: killed after reading, after each journal store, after the commit (before dropping the fds)', async () => {
    const out = await runNodeOk(commitWindows({
      side: 'consumer',
      cursor: ['C_JSEQ', 'C_JEND', 'GET_COUNT', 'HEAD'],
      before: `
        for (const text of ['m1', 'm2']) { const [a, b] = Pipe(); b.send(text); q.putSync({ conn: a }); a.close(); b.close(); }`,
      prepare: `
        const H = w[W.HEAD], seq = w[W.GET_COUNT];
        let off = H & r.mask, start = H;
        if (w[(HEADER_BYTES + off) >> 2] === -1) { start = (H + r.cap - off) | 0; off = 0; }
        const len = w[(HEADER_BYTES + off) >> 2] & LEN_MASK;
        const end = (start + 8 + ((len + 7) & ~7)) | 0;`,
      after: `
        while (!q.empty()) {
          const { conn } = q.getSync();
          got.push(conn.recvSync());
          conn.close();
        }`,
    }));
    const r = JSON.parse(out);
    for (const step of [0, 1, 2]) expect(r[step]).toEqual({ code: -9, qsizeAfterDeath: 2, got: ['m1', 'm2'], qsize: 0 });
    expect(r[3]).toEqual({ code: -9, qsizeAfterDeath: 1, got: ['m1', 'm2'], qsize: 0 });
    expect(r[4]).toEqual({ code: -9, qsizeAfterDeath: 1, got: ['m2'], qsize: 0 });
  });
});

describe('processes killed by SIGKILL in the middle of real puts and gets', () => {
  it('producers killed mid-put in a loop of large items: the consumer sees only whole items, no gaps, and the queue goes on', async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      import { readFileSync } from 'node:fs';
      const paths = ${PATHS};
      const { ringOf } = await import(paths.queues);
      const { W } = await import(paths.ring);
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const q = new Queue({ capacityBytes: 256 * 1024 });
      const results = new Queue();
      const w = ringOf(q).w;
      const consumer = new Process({
        target: (q, results) => {
          const last = new Map();
          let torn = 0, disorder = 0, n = 0, bytes = 0;
          try {
            for (;;) {
              const m = q.getSync();
              if (m === 'end') break;
              const fill = (m.p * 31 + m.i) & 255;
              if (m.data.length !== m.len || !m.data.equals(Buffer.alloc(m.len, fill))) torn++;
              if ((last.get(m.p) ?? -1) !== m.i - 1) disorder++;
              last.set(m.p, m.i);
              n++;
              bytes += m.len;
            }
          } catch (e) {
            results.putSync({ error: String(e?.stack ?? e), n }); // said, rather than a parent waiting forever
            return;
          }
          results.putSync({ torn, disorder, n, bytes, last: [...last] });
        },
        args: [q, results],
      });
      consumer.start();
      const producer = async (q, p) => {
        // 40 KiB items go in the ring, 200 KiB ones spill; every 3rd carries a Map (the v8 path).
        const sizes = [40 * 1024, 200 * 1024, 3 * 1024, 90 * 1024];
        for (let i = 0; ; i++) {
          const len = sizes[i % sizes.length] + i;
          const m = { p, i, len, data: Buffer.alloc(len, (p * 31 + i) & 255) };
          if (i % 3 === 0) m.extra = new Map([[i, 'x']]);
          if (i % 2) await q.put(m); else q.putSync(m);
        }
      };
      // Stopped, or gone (a zombie, or reaped): either way no longer running.
      const stopped = (pid) => { try { return / [TtZX] /.test(readFileSync('/proc/' + pid + '/stat', 'utf8').split(')')[1].slice(0, 3)); } catch { return true; } };
      let kills = 0, seed = 7;
      const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
      for (let k = 0; k < 8; k++) {
        const p = new Process({ target: producer, args: [q, k] });
        const before = Atomics.load(w, W.PUT_COUNT);
        p.start();
        // Running and putting (however slow the start, as under a sanitizer) before the hunt.
        for (let t = 0; Atomics.load(w, W.PUT_COUNT) - before < 3 && t < 60000; t += 5) await sleep(5);
        await sleep(rnd(100));
        for (let tries = 0; tries < 5000; tries++) {
          process.kill(p.pid, 'SIGSTOP');
          while (!stopped(p.pid)) await sleep(0);
          if (p.exitCode !== null) throw new Error('producer ' + k + ' ended by itself (exit code ' + p.exitCode + ') after ' + (Atomics.load(w, W.PUT_COUNT) - before) + ' puts');
          if ((Atomics.load(w, W.P_LOCK) & 0x3fffffff) === p.pid) {
            process.kill(p.pid, 'SIGKILL');
            kills++;
            break;
          }
          process.kill(p.pid, 'SIGCONT');
          await sleep(rnd(3));
        }
        // A producer never caught holding the lock would put forever: say so instead of hanging.
        await p.join(20000);
        if (p.exitCode === null) { p.kill(); throw new Error('producer ' + k + ' was never caught holding the put lock (kills ' + kills + ')'); }
      }
      await q.put('end');
      const state = () => JSON.stringify({ kills, P_LOCK: Atomics.load(w, W.P_LOCK), PUT: Atomics.load(w, W.PUT_COUNT), GET: Atomics.load(w, W.GET_COUNT), consumer: consumer.exitCode });
      const r = await results.get({ timeout: 30000 }).catch((e) => { throw new Error('no result from the consumer: ' + state(), { cause: e }); });
      await consumer.join();
      console.log(JSON.stringify({ ...r, kills, code: consumer.exitCode, qsize: q.qsize(), empty: q.empty() }));
    `);
    const r = JSON.parse(out);
    expect(r.error).toBeUndefined();
    expect(r.kills).toBe(8);
    expect(r.torn).toBe(0);
    expect(r.disorder).toBe(0);
    expect(r.n).toBeGreaterThan(8);
    expect(r.last.length).toBe(8);
    expect(r.code).toBe(0);
    expect(r.qsize).toBe(0);
    expect(r.empty).toBe(true);
  });

  it('a consumer killed in the middle of a get (fds peeked, spilled bytes read) leaves the item to the next one', async () => {
    const out = await runNodeOk(`
      import { Queue, Process, Pipe } from LIB;
      const paths = ${PATHS};
      const { registerReducer } = await import(${dist('reduction.js')});
      // A handle whose rebuild stalls forever in the consumer child: it gets stuck inside its get,
      // after it has taken the item's fds and read its spilled bytes, before the commit.
      class Stall {}
      registerReducer({ type: 'Stall', cls: Stall, reduce: () => 0, rebuild: () => new Stall() });
      const q = new Queue({ capacityBytes: 16384 });
      const made = [];
      for (let i = 0; i < 3; i++) {
        const [a, b] = Pipe();
        b.send('conn ' + i);
        made.push(a, b);
        q.putSync({ i, conn: a, big: Buffer.alloc(100000, i + 1), stall: new Stall() });
      }
      made.forEach((c) => c.close());
      const stalled = new Queue();
      const p = new Process({
        target: async (q, stalled, reductionUrl) => {
          const { registerReducer } = await import(reductionUrl);
          class Stall {}
          registerReducer({ type: 'Stall', cls: Stall, reduce: () => 0, rebuild: () => {
            stalled.putSync('inside get');
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
          } });
          q.getSync();
        },
        args: [q, stalled, ${dist('reduction.js')}],
      });
      p.start();
      await stalled.get();
      const qsizeWhileStuck = q.qsize();
      p.kill();
      await p.join();
      const got = [];
      for (let i = 0; i < 3; i++) {
        const m = await q.get({ timeout: 20000 });
        got.push([m.i, m.conn.recvSync(), m.big.length === 100000 && m.big[99999] === m.i + 1, m.stall instanceof Stall]);
        m.conn.close();
      }
      console.log(JSON.stringify({ code: p.exitCode, qsizeWhileStuck, got, empty: q.empty() }));
    `);
    expect(JSON.parse(out)).toEqual({
      code: -9, qsizeWhileStuck: 3, empty: true,
      got: [[0, 'conn 0', true, true], [1, 'conn 1', true, true], [2, 'conn 2', true, true]],
    });
  });

  it('processes killed while parked (a consumer waiting for items, a producer waiting for room) leave no stale waiters', async () => {
    const out = await runNodeOk(`
      import { Queue, Process, Event } from LIB;
      const paths = ${PATHS};
      const { ringOf } = await import(paths.queues);
      const { W } = await import(paths.ring);
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const q = new Queue({ maxsize: 1 });
      const w = ringOf(q).w;
      const parkedConsumer = new Process({ target: (q) => { q.getSync(); }, args: [q] });
      parkedConsumer.start();
      while (Atomics.load(w, W.TAIL_WAITERS) === 0) await sleep(5);
      parkedConsumer.kill();
      await parkedConsumer.join();
      q.putSync('a');
      const a = q.getSync({ timeout: 20000 });
      const tailWaiters = Atomics.load(w, W.TAIL_WAITERS);
      q.putSync('full');
      const parkedProducer = new Process({ target: (q) => { q.putSync('b'); }, args: [q] });
      parkedProducer.start();
      while (Atomics.load(w, W.HEAD_WAITERS) === 0) await sleep(5);
      parkedProducer.kill();
      await parkedProducer.join();
      const full = q.getSync();
      await q.put('c', { timeout: 20000 });
      const headWaiters = Atomics.load(w, W.HEAD_WAITERS);
      console.log(JSON.stringify({ a, full, c: q.getSync(), tailWaiters, headWaiters, empty: q.empty(), codes: [parkedConsumer.exitCode, parkedProducer.exitCode] }));
    `);
    expect(JSON.parse(out)).toEqual({ a: 'a', full: 'full', c: 'c', tailWaiters: 0, headWaiters: 0, empty: true, codes: [-9, -9] });
  });
});
