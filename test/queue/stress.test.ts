// A seeded stress run: producers and consumers in many processes, items of random sizes (in the
// ring, spilled, some carrying a Connection), random timeouts, and random SIGKILLs of both sides.
// Every item got is whole, none twice, in order per producer for each consumer, and none missing
// except one per consumer killed between its get and its log. Bounded in CI; longer with
// MULTIPROC_STRESS_SECONDS=<s>, another seed with MULTIPROC_STRESS_SEED=<n>.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

const SECONDS = Number(process.env.MULTIPROC_STRESS_SECONDS ?? 5);
const SEED = Number(process.env.MULTIPROC_STRESS_SEED ?? 20261126);
const dist = (m: string) => JSON.stringify(new URL(`../../dist/${m}`, import.meta.url).href);

describe('stress', () => {
  it(`producers and consumers killed at random for ${SECONDS} s (seed ${SEED})`, { timeout: (SECONDS + 90) * 1000 }, async () => {
    const out = await runNodeOk(`
      import { Queue, Process } from LIB;
      const { Segment } = await import(${dist('segment.js')});
      const SECONDS = ${SECONDS}, SEED = ${SEED};
      let seed = SEED;
      const rnd = (n) => { seed = (seed + 0x6d2b79f5) | 0; let t = Math.imul(seed ^ (seed >>> 15), seed | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) % n); };
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const q = new Queue({ capacityBytes: 16384, maxsize: 64 });
      const LOG_WORDS = 1 << 20; // [count, then (producer, index, ok) triples]

      const producer = async (q, id, seed) => {
        const { Pipe } = await import('multiproc');
        const rnd = (n) => { seed = (seed + 0x6d2b79f5) | 0; let t = Math.imul(seed ^ (seed >>> 15), seed | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) % n); };
        for (let i = 0; ; ) {
          const kind = rnd(20);
          const len = kind < 14 ? rnd(200) : kind < 18 ? 1000 + rnd(6000) : 9000 + rnd(30000);
          const item = { p: id, i, len, data: Buffer.alloc(len, (id * 7 + i) & 255) };
          let conn = null;
          if (rnd(10) === 0) { const [a, b] = Pipe(); item.conn = a; conn = [a, b]; }
          try {
            const t = rnd(4);
            if (t === 0) q.putSync(item);
            else if (t === 1) q.putSync(item, { timeout: rnd(30) });
            else if (t === 2) await q.put(item, { timeout: rnd(30) });
            else await q.put(item);
            i++;
          } catch (e) {
            if (e.name !== 'Full') throw e;
          } finally {
            if (conn) { conn[0].close(); conn[1].close(); }
          }
        }
      };

      const consumer = async (q, seg, seed) => {
        const rnd = (n) => { seed = (seed + 0x6d2b79f5) | 0; let t = Math.imul(seed ^ (seed >>> 15), seed | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) % n); };
        const log = seg.words();
        for (;;) {
          let m;
          try {
            const t = rnd(4);
            m = t === 0 ? q.getSync() : t === 1 ? q.getSync({ timeout: rnd(30) }) : t === 2 ? await q.get({ timeout: rnd(30) }) : await q.get();
          } catch (e) {
            if (e.name !== 'Empty') throw e;
            continue;
          }
          if (m === 'stop') return;
          const ok = m.data.length === m.len && m.data.equals(Buffer.alloc(m.len, (m.p * 7 + m.i) & 255)) ? 1 : 0;
          if (m.conn) m.conn.close();
          const n = log[0];
          if (1 + 3 * (n + 1) > log.length) throw new Error('log full');
          log[1 + 3 * n] = m.p; log[2 + 3 * n] = m.i; log[3 + 3 * n] = ok;
          Atomics.store(log, 0, n + 1);
        }
      };

      let nextProducer = 0;
      const producers = new Set(), consumers = new Set(), logs = [], born = new Map();
      const startProducer = () => {
        const p = new Process({ target: producer, args: [q, nextProducer++, rnd(1e9) + 1] });
        p.start();
        producers.add(p);
        born.set(p, performance.now());
      };
      const startConsumer = () => {
        const seg = Segment.create(LOG_WORDS * 4);
        logs.push(seg);
        const p = new Process({ target: consumer, args: [q, seg, rnd(1e9) + 1] });
        p.start();
        consumers.add(p);
        born.set(p, performance.now());
      };
      const t0 = performance.now();
      for (let k = 0; k < 3; k++) { startProducer(); startConsumer(); }
      // Victims must have lived a while: as long as the first item took to get through, and more
      // (a slow start, as under a sanitizer, must not mean that nobody ever does anything).
      while (logs.every((seg) => Atomics.load(seg.words(), 0) === 0)) await sleep(5);
      const minAge = performance.now() - t0 + 50;
      let producerKills = 0, consumerKills = 0;
      const deadline = performance.now() + SECONDS * 1000;
      while (performance.now() < deadline) {
        await sleep(20 + rnd(150));
        const killProducer = rnd(2) === 0;
        const pool = [...(killProducer ? producers : consumers)].filter((p) => performance.now() - born.get(p) > minAge);
        if (pool.length === 0) continue;
        const victim = pool[rnd(pool.length)];
        victim.kill();
        await victim.join();
        if (victim.exitCode !== -9) throw new Error('a ' + (killProducer ? 'producer' : 'consumer') + ' ended by itself: ' + victim.exitCode);
        if (killProducer) { producers.delete(victim); producerKills++; startProducer(); }
        else { consumers.delete(victim); consumerKills++; startConsumer(); }
      }
      for (const p of producers) { p.kill(); await p.join(); producerKills++; }
      for (let k = 0; k < consumers.size; k++) await q.put('stop', { timeout: 60000 });
      for (const c of consumers) {
        await c.join();
        if (c.exitCode !== 0) throw new Error('a consumer failed: ' + c.exitCode);
      }
      // Tally every log.
      const seen = new Map();
      let got = 0, torn = 0, dup = 0, disorder = 0;
      for (const seg of logs) {
        const log = seg.words();
        const last = new Map();
        for (let k = 0; k < log[0]; k++) {
          const p = log[1 + 3 * k], i = log[2 + 3 * k];
          got++;
          if (!log[3 + 3 * k]) torn++;
          if ((last.get(p) ?? -1) >= i) disorder++;
          last.set(p, i);
          const s = seen.get(p) ?? new Set();
          if (s.has(i)) dup++;
          s.add(i);
          seen.set(p, s);
        }
      }
      let gaps = 0;
      for (const s of seen.values()) { const max = Math.max(...s); gaps += max + 1 - s.size; }
      console.log(JSON.stringify({ got, torn, dup, disorder, gaps, producerKills, consumerKills, producers: nextProducer, qsize: q.qsize(), empty: q.empty() }));
    `);
    const r = JSON.parse(out);
    console.log(`stress (seed ${SEED}, ${SECONDS} s): ${out.trim()}`);
    const why = `seed ${SEED}: ${out}`;
    expect(r.torn, why).toBe(0);
    expect(r.dup, why).toBe(0);
    expect(r.disorder, why).toBe(0);
    expect(r.gaps, why).toBeLessThanOrEqual(r.consumerKills);
    expect(r.got, why).toBeGreaterThan(100);
    expect(r.consumerKills + r.producerKills, why).toBeGreaterThan(3);
    expect(r.qsize, why).toBe(0);
    expect(r.empty, why).toBe(true);
  });
});
