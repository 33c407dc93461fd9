// Locks and events: uncontended acquire+release, a two-process Event ping-pong (spinning, parked,
// async), and `Value += 1` under its lock in 2 processes — ours beside CPython's multiprocessing and
// the C floor (bench/peers/sync_floor.c). Run alone with `node bench/lock.mjs`, or through bench/run.mjs.
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { LIB_URL, PEERS, ROUNDS, compileC, combineRtt, fmtRatio, fmtRate, fmtUs, inRounds, median, percentiles, runPythonPeer } from './common.mjs';
import { loadLib } from './pipe.mjs';

export const name = 'lock';
export const title = 'Locks, events and Value: uncontended, ping-pong, increments under a lock';

const LOCK_N = 2_000_000; // pairs per round, per lock type
const PP_N = { spin: 20_000, parked: 3_000, async: 5_000, 'async-parked': 3_000 };
const INC_N = 100_000; // increments per process
const PY = join(PEERS, 'py_sync.py');

// ---- ours ----

function uncontended(lib, kind, n) {
  const { Lock, RLock, Semaphore } = lib;
  const x = kind === 'rlock' ? new RLock() : kind === 'sem' ? new Semaphore(1) : new Lock();
  for (let i = 0; i < n / 10; i++) { x.acquireSync(); x.release(); }
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) { x.acquireSync(); x.release(); }
  return Number(process.hrtime.bigint() - t) / n;
}

async function uncontendedAsync(lib, n) {
  const x = new lib.Lock();
  for (let i = 0; i < n / 10; i++) { await x.acquire(); x.release(); }
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) { await x.acquire(); x.release(); }
  return Number(process.hrtime.bigint() - t) / n;
}

/** The other side of the ping-pong: waits for ping, clears it, sets pong. */
async function ponger(ping, pong, n, useAsync) {
  for (let i = 0; i < n; i++) {
    if (useAsync) await ping.wait(); else ping.waitSync();
    ping.clear();
    pong.set();
  }
}

async function pingpong(lib, mode, n) {
  const { Event, Process } = lib;
  const spinMs = mode === 'parked' || mode === 'async-parked' ? 0 : undefined;
  const opts = spinMs === undefined ? {} : { spinMs };
  const ping = new Event(opts);
  const pong = new Event(opts);
  const useAsync = mode.startsWith('async');
  const warm = Math.max(200, Math.ceil(n / 10));
  const p = new Process({ target: ponger, args: [ping, pong, n + warm, useAsync], daemon: true });
  p.start();
  const rt = new Float64Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n + warm; i++) {
    const t = process.hrtime.bigint();
    ping.set();
    if (useAsync) await pong.wait(); else pong.waitSync();
    pong.clear();
    if (i >= warm) rt[i - warm] = Number(process.hrtime.bigint() - t);
  }
  const total = Number(process.hrtime.bigint() - t0);
  await p.join();
  const [p50, p99] = percentiles(Array.from(rt));
  return { n, p50, p99, perS: (n + warm) / (total / 1e9) };
}

export async function increments(lib, n, useAsync) {
  const { Value, Event, Process } = lib;
  const v = Value('i', 0);
  const go = new Event();
  const inc = async (v, go, n, useAsync) => {
    go.waitSync();
    const lock = v.getLock();
    if (useAsync) for (let i = 0; i < n; i++) { await lock.acquire(); v.value += 1; lock.release(); }
    else for (let i = 0; i < n; i++) { lock.acquireSync(); v.value += 1; lock.release(); }
  };
  const ps = [0, 1].map(() => new Process({ target: inc, args: [v, go, n, useAsync], daemon: true }));
  ps.forEach((p) => p.start());
  await new Promise((r) => setTimeout(r, 1500)); // both started and waiting
  const t = process.hrtime.bigint();
  go.set();
  for (const p of ps) await p.join();
  const ns = Number(process.hrtime.bigint() - t);
  if (v.value !== 2 * n || ps.some((p) => p.exitCode !== 0)) throw new Error(`increments: got ${v.value}, want ${2 * n} (exit codes ${ps.map((p) => p.exitCode)})`);
  return ns / (2 * n);
}

/**
 * Where the time of `increments` goes: the same loop, timed from go to the end of the later
 * loop (no process exit), after each process ran it WARM times on a Value of its own (its code
 * optimized). Returns ns per increment of the loops, and of each process's own loop on the
 * warm-up Value, alone (both as medians of one round).
 */
const WARM = 300_000;
export async function incrementsWarm(lib, n, useAsync, libUrl = LIB_URL) {
  const { Value, Event, Process, RawArray, Barrier } = lib;
  const v = Value('i', 0);
  const go = new Event();
  const ready = new Barrier(3);
  const ends = RawArray('d', 4); // [k]: end of process k's loop; [2 + k]: its warm-up loop, ns per increment
  const inc = async (v, go, ready, ends, k, n, useAsync, warm, libUrl) => {
    const { Value } = await import(libUrl);
    const loop = async (v, n) => {
      const lock = v.getLock();
      if (useAsync) for (let i = 0; i < n; i++) { await lock.acquire(); v.value += 1; lock.release(); }
      else for (let i = 0; i < n; i++) { lock.acquireSync(); v.value += 1; lock.release(); }
    };
    const mine = Value('i', 0);
    await loop(mine, warm);
    const t = process.hrtime.bigint();
    await loop(mine, warm);
    ends.set(2 + k, Number(process.hrtime.bigint() - t) / warm);
    await ready.wait();
    go.waitSync();
    await loop(v, n);
    ends.set(k, Number(process.hrtime.bigint()));
  };
  const ps = [0, 1].map((k) => new Process({ target: inc, args: [v, go, ready, ends, k, n, useAsync, WARM, libUrl], daemon: true }));
  ps.forEach((p) => p.start());
  await ready.wait();
  await new Promise((r) => setTimeout(r, 200)); // both waiting for go
  const t = process.hrtime.bigint();
  go.set();
  for (const p of ps) await p.join();
  if (v.value !== 2 * n || ps.some((p) => p.exitCode !== 0)) throw new Error(`increments (warm): got ${v.value}, want ${2 * n} (exit codes ${ps.map((p) => p.exitCode)})`);
  const end = Math.max(ends.get(0), ends.get(1));
  return { loop: (end - Number(t)) / (2 * n), alone: median([ends.get(2), ends.get(3)]) };
}

// ---- the C floor ----

let floorBin;
function floor(args) {
  floorBin ??= compileC('sync_floor.c', ['-lpthread']);
  if (!floorBin.path) return { skipped: floorBin.why };
  const r = spawnSync(floorBin.path, args, { encoding: 'utf8' });
  if (r.status !== 0) return { skipped: `sync_floor failed: ${r.stderr.trim()}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

export async function run() {
  const lib = await loadLib();
  const notes = [];
  const hasValue = typeof lib.Value === 'function';
  let pyVersion = '';
  const per = (n) => Math.ceil(n / ROUNDS);

  const cases = [
    {
      label: 'ours: uncontended',
      measure: async () => ({
        'u-lock': uncontended(lib, 'lock', per(LOCK_N) * 3),
        'u-rlock': uncontended(lib, 'rlock', per(LOCK_N) * 3),
        'u-sem': uncontended(lib, 'sem', per(LOCK_N) * 3),
        'u-async': await uncontendedAsync(lib, per(LOCK_N)),
      }),
    },
    ...Object.keys(PP_N).map((mode) => ({ label: `ours: ping-pong ${mode}`, measure: async () => ({ [`pp-${mode}`]: await pingpong(lib, mode, per(PP_N[mode])) }) })),
    ...(hasValue
      ? [
          { label: 'ours: Value += 1', measure: async () => ({ 'inc-sync': await increments(lib, per(INC_N), false), 'inc-async': await increments(lib, per(INC_N), true) }) },
          {
            label: 'ours: Value += 1, warm loops',
            measure: async () => {
              const s = await incrementsWarm(lib, per(INC_N), false);
              const a = await incrementsWarm(lib, per(INC_N), true);
              return { 'inc-sync-warm': s.loop, 'inc-async-warm': a.loop, 'inc-sync-alone': s.alone, 'inc-async-alone': a.alone };
            },
          },
        ]
      : []),
    {
      label: 'CPython',
      measure: async () => {
        const r = await runPythonPeer(PY, { lock_n: per(LOCK_N) * 3, pp_n: per(PP_N.parked), inc_n: per(INC_N), inc_warm: WARM });
        if (r.skipped) return r;
        pyVersion = r.python;
        const [p50, p99] = percentiles(r.pingpong);
        const perS = r.pingpong.length / (r.pingpong.reduce((s, x) => s + x, 0) / 1e9);
        return { 'py-lock': r.lock, 'py-rlock': r.rlock, 'py-pp': { n: r.pingpong.length, p50, p99, perS }, 'py-inc': r.inc, 'py-inc-loops': r.inc_loops };
      },
    },
    {
      label: 'C floor',
      measure: async () => {
        const l = floor(['lock', String(per(LOCK_N) * 10)]);
        if (l.skipped) return l;
        const parked = floor(['pingpong', String(per(PP_N.parked)), '0']);
        const spin = floor(['pingpong', String(per(PP_N.spin)), '50']);
        return { 'c-robust': l.robust, 'c-sem': l.sem, 'c-word': l.word, 'c-pp-parked': { n: per(PP_N.parked), perS: 1e9 / parked.p50, ...parked }, 'c-pp-spin': { n: per(PP_N.spin), perS: 1e9 / spin.p50, ...spin } };
      },
    },
  ];
  const runs = await inRounds(cases);
  for (const [label, why] of runs.skipped) notes.push(`${label} skipped: ${why}`);
  if (!hasValue) notes.push('Value is not in this build: the increment rows were not measured.');
  const med = (k) => median(runs.results.get(k) ?? []);
  const rtt = (k) => combineRtt(runs.results.get(k));
  const py = pyVersion ? `CPython ${pyVersion}` : 'CPython';

  const pyLock = med('py-lock');
  const uRows = [
    ['u-lock', 'multiproc Lock: acquireSync() + release()'],
    ['u-rlock', 'multiproc RLock: acquireSync() + release()'],
    ['u-sem', 'multiproc Semaphore(1): acquireSync() + release()'],
    ['u-async', 'multiproc Lock: await acquire() + release()'],
    ['py-lock', `${py} multiprocessing.Lock: acquire() + release()`],
    ['py-rlock', `${py} multiprocessing.RLock: acquire() + release()`],
    ['c-robust', 'C pthread mutex (pshared, robust) lock + unlock'],
    ['c-sem', 'C sem_t (pshared) wait + post'],
    ['c-word', 'C futex word CAS + xchg (our scheme, no JS)'],
  ].map(([k, impl]) => {
    const ns = med(k);
    return [impl, ns === null ? '—' : ns.toFixed(1), ns === null ? '—' : fmtRate(1e9 / ns), ns && pyLock ? fmtRatio(pyLock / ns) : '—'];
  });
  const uTable = {
    title: 'Uncontended acquire + release, one thread (ns per pair; ratio = CPython Lock / this, >1 is faster)',
    columns: ['implementation', 'ns/pair', 'pairs/s', 'vs CPython Lock'],
    rows: uRows,
    notes: [`median of ${ROUNDS} rounds of ${per(LOCK_N) * 3} pairs (C: ${per(LOCK_N) * 10}; async: ${per(LOCK_N)}), after a tenth as many untimed. CPython's loop calls bound methods (its interpreter overhead is included, as ours is).`],
  };

  const ppRows = [
    ['pp-spin', 'multiproc Event, waitSync(), default spin (0.05 ms) then park'],
    ['pp-parked', 'multiproc Event, waitSync(), spinMs 0 (park at once)'],
    ['pp-async', 'multiproc Event, await wait() both sides, default spin'],
    ['pp-async-parked', 'multiproc Event, await wait() both sides, spinMs 0'],
    ['py-pp', `${py} multiprocessing.Event`],
    ['c-pp-spin', 'C futex words, spin 50 µs then park (floor)'],
    ['c-pp-parked', 'C futex words, park at once (floor)'],
  ];
  const pyPp = rtt('py-pp');
  const ppTable = {
    title: 'Two-process ping-pong: set ping, wait for pong (µs per round trip; ratio = CPython p50 / this p50)',
    columns: ['implementation', 'n', 'p50 µs', 'p99 µs', 'round trips/s', 'vs CPython'],
    rows: ppRows.map(([k, impl]) => {
      const r = rtt(k);
      return r ? [impl, r.n, fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS), pyPp ? fmtRatio(pyPp.p50 / r.p50) : '—'] : [impl, 0, 'skipped', '—', '—', '—'];
    }),
    notes: ['Each side: wait for its event, clear it, set the other. p50/p99: medians of the rounds\' own; round trips/s over all rounds (C rows: 1e9 / p50).', 'spinning keeps a CPU busy for up to the spin time per wait; on this 2-CPU VM the scheduler sometimes runs both sides on one CPU, which is the p99 tail.'],
  };

  const pyInc = med('py-inc');
  const pyIncLoops = med('py-inc-loops');
  const incTable = {
    title: 'Value(\'i\') += 1 under its lock, 2 processes (ns per increment; first rows from go to both joined, indented ones warm loops)',
    columns: ['implementation', 'increments', 'ns/increment', 'vs CPython'],
    rows: [
      ['inc-sync', 'multiproc Value: getLock().acquireSync(); v.value += 1; release()'],
      ['inc-async', 'multiproc Value: await getLock().acquire(); v.value += 1; release()'],
      ['inc-sync-warm', '  the same acquireSync loops, warm (code optimized), go to the later loop\'s end (no exit)'],
      ['inc-async-warm', '  the same await acquire() loops, warm, go to the later loop\'s end (no exit)'],
      ['inc-sync-alone', '  one process alone, warm acquireSync loop (no contention)'],
      ['inc-async-alone', '  one process alone, warm await acquire() loop (no contention)'],
      ['py-inc', `${py} Value: with v.get_lock(): v.value += 1`],
      ['py-inc-loops', `  ${py}, the same loops after ${WARM} warm-up increments, go to the later loop's end (no exit)`],
    ].map(([k, impl]) => {
      const ns = med(k);
      // Warm rows against CPython's warm loops, the others against CPython's go-to-join figure.
      const peer = k.includes('warm') || k.endsWith('-alone') ? pyIncLoops : pyInc;
      return [impl, k.endsWith('-alone') ? WARM : 2 * per(INC_N), ns === null ? '—' : ns.toFixed(0), ns && peer && k !== 'py-inc-loops' ? fmtRatio(peer / ns) : '—'];
    }),
    notes: [
      'Both processes start, wait for an Event, then increment as fast as they can; median of the rounds. The default lock of a Value is an RLock, as in Python.',
      `The first two rows (and CPython's) run from go to both processes joined: they include each child's JIT warm-up (its first tens of thousands of iterations run unoptimized) and its exit (a node process takes ~10 ms to end). The indented rows say where the time goes: the same loops after ${WARM} warm-up increments in each process on a Value of its own, timed from go to the end of the later loop; and one process's warm loop alone.`,
    ],
  };

  const u = med('u-lock');
  const spin = rtt('pp-spin');
  const parked = rtt('pp-parked');
  const inc = med('inc-sync-warm');
  const incCold = med('inc-sync');
  const goals = [
    u ? { text: `uncontended Lock acquire+release at least as fast as CPython's (${pyLock ? pyLock.toFixed(1) : '—'} ns here, 61.7 in BASELINES.md), aiming at the C floor (30 ns): ${u.toFixed(1)} ns`, pass: pyLock ? u <= pyLock : u <= 61.7 } : { text: 'uncontended: not measured', pass: null },
    parked ? { text: `ping-pong parked no slower than CPython's (p50 ${pyPp ? fmtUs(pyPp.p50) : '—'} µs): ${fmtUs(parked.p50)} µs`, pass: pyPp ? parked.p50 <= pyPp.p50 : null } : { text: 'ping-pong parked: not measured', pass: null },
    spin ? { text: `ping-pong with a short spin under 1 µs p50: ${fmtUs(spin.p50)} µs (C floor with spin ${rtt('c-pp-spin') ? fmtUs(rtt('c-pp-spin').p50) : '—'} µs)`, pass: spin.p50 < 1000 } : { text: 'ping-pong spin: not measured', pass: null },
    inc ? { text: `Value += 1 under its lock, 2 processes, under 0.3 µs per increment (warm loops, go to the later loop's end): ${(inc / 1000).toFixed(3)} µs (CPython the same way ${pyIncLoops ? (pyIncLoops / 1000).toFixed(2) : '—'} µs); from go to both joined, with JIT warm-up and process exit: ${incCold ? (incCold / 1000).toFixed(3) : '—'} µs (CPython ${pyInc ? (pyInc / 1000).toFixed(2) : '—'} µs)`, pass: inc < 300 } : { text: 'Value += 1: not measured', pass: null },
  ];
  return { name, title, tables: [uTable, ppTable, incTable], goals, notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
