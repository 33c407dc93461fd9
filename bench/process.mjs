// Process start: start() → target running, and start() → join, for ours ('spawn' and
// 'forkserver', warm and back to back) beside child_process.fork(), CPython's
// multiprocessing.Process (fork, spawn, forkserver) and the C floor (fork + exec).
// Run alone with `node bench/process.mjs`, or with the others through `node bench/run.mjs`.
import { fork } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  runPythonPeer,
  PEERS, ROUNDS, compileC, ended, fmtRatio, inRounds, now, percentiles, sleep, spawnTracked, track,
} from './common.mjs';
import { loadLib } from './pipe.mjs';

export const name = 'process';
export const title = 'Process: start → target running, start → join';

const FORK_START = join(PEERS, 'fork_start.mjs');
const PY_PROCESS = join(PEERS, 'py_process.py');

/** Timed starts per case over all rounds (each round does a ROUNDS-th). Spawn-type starts cost 0.1–0.3 s each here. */
const N = {
  'ours-spawn': 24, 'ours-warm': 30, 'ours-b2b': 30, fork: 24,
  'py-fork': 45, 'py-spawn': 24, 'py-forkserver': 45, c: 600,
};
/** Untimed starts per case and round (first-use costs: loading code, CPython's forkserver itself). */
const WARMUP = 2;
/** The pool size the library keeps (lib/context.ts reads this variable at every refill). */
const warmTarget = () => {
  const n = Number(process.env.MULTIPROC_FORKSERVER_WARM ?? 2);
  return Number.isInteger(n) && n >= 0 ? n : 2;
};

// ---- ours ----

/** The target: its start time (CLOCK_MONOTONIC ns, the parent's process.hrtime clock) first thing, then return. */
function startTarget(conn) {
  conn.send(Number(process.hrtime.bigint()));
}

// Children of ours in flight: a bench ended by a signal (common.mjs exits) kills them rather than leave them running.
const inflight = new Set();
process.on('exit', () => {
  for (const p of inflight) {
    try { p.kill(); } catch { /* gone */ }
  }
});

/** One start of ours: ns since t0 when start() returned, the target entered, the parent had its message, join() resolved. */
async function oursOnce(lib) {
  const { Process, Pipe } = lib;
  const [a, b] = Pipe();
  const p = new Process({ target: startTarget, args: [b] });
  inflight.add(p);
  const t0 = now();
  p.start();
  const t1 = now();
  b.close(); // the child has its own copy now
  const entry = await a.recv();
  const t2 = now();
  await p.join();
  const t3 = now();
  inflight.delete(p);
  a.close();
  if (p.exitCode !== 0) throw new Error(`${p}: exit code ${p.exitCode}`);
  p.close();
  return { call: Number(t1 - t0), entry: entry - Number(t0), running: Number(t2 - t0), join: Number(t3 - t0), t0 };
}

// Readiness of the forkserver's warm processes, seen from outside: a warm `node` has loaded the
// library and waits for its start message in recvSync, that is blocked in poll() on its control
// socket with no timeout (/proc/PID/syscall: the syscall number, then its arguments). While it
// boots it is running, or waiting in epoll_wait/futex, never in poll().
const POLL_SYSCALLS = { x64: new Set(['7', '271']), arm64: new Set(['73']) }[process.arch];

function childPids() {
  const out = [];
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.push(...readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
    } catch { /* thread gone */ }
  }
  return out;
}

/** Our warm processes that wait for a target; null when /proc cannot tell. */
function readyWarm() {
  if (!POLL_SYSCALLS) return null;
  let ready = 0;
  try {
    for (const pid of childPids()) {
      let cmd, sys;
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        sys = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim().split(' ');
      } catch (e) {
        if (e.code === 'ENOENT' || e.code === 'ESRCH') continue; // just exited
        throw e;
      }
      if (!cmd.includes('--multiproc-warm')) continue;
      if (POLL_SYSCALLS.has(sys[0]) && (sys[0] === '73' || sys[0] === '271' || sys[3] === '0xffffffffffffffff' || sys[3] === '0xffffffff')) ready++;
    }
  } catch {
    return null; // no /proc/self/task/*/children or /proc/PID/syscall (permissions, kernel config)
  }
  return ready;
}

let readinessFallback = false;
/** Waits until the pool is full and every process in it waits for a target (seen twice, 5 ms apart); ns waited since `since`. */
async function poolReady(since = now()) {
  const want = warmTarget();
  let streak = 0;
  const deadline = now() + 10_000_000_000n;
  for (;;) {
    const r = readyWarm();
    if (r === null) {
      readinessFallback = true;
      await sleep(500);
      return null;
    }
    if (r >= want) {
      if (++streak === 2) return Number(now() - since);
    } else streak = 0;
    if (now() > deadline) throw new Error(`forkserver: ${r} of ${want} warm processes ready after 10 s`);
    await sleep(5);
  }
}

/**
 * Starts with our Process. mode 'spawn'; 'warm': forkserver, the pool full and ready before each
 * start (and the time it took to be so again, from the previous start); 'b2b': forkserver, starts
 * one after another with no wait, after enough untimed ones to drain the pool.
 */
async function ours(mode, n) {
  const lib = await loadLib();
  lib.setStartMethod(mode === 'spawn' ? 'spawn' : 'forkserver', { force: true });
  const out = { call: [], entry: [], running: [], join: [], refill: [] };
  const keep = (r) => { for (const k of ['call', 'entry', 'running', 'join']) out[k].push(r[k]); };
  if (mode === 'spawn') {
    for (let i = 0; i < WARMUP; i++) await oursOnce(lib);
    for (let i = 0; i < n; i++) keep(await oursOnce(lib));
  } else if (mode === 'warm') {
    await poolReady();
    for (let i = 0; i < WARMUP; i++) {
      await oursOnce(lib);
      await poolReady();
    }
    for (let i = 0; i < n; i++) {
      const r = await oursOnce(lib);
      keep(r);
      const waited = await poolReady(r.t0);
      if (waited !== null) out.refill.push(waited);
      await sleep(20); // let the exited child's teardown finish
    }
  } else {
    await poolReady();
    for (let i = 0; i < WARMUP + warmTarget() + 1; i++) await oursOnce(lib);
    for (let i = 0; i < n; i++) keep(await oursOnce(lib));
  }
  // Back to 'spawn': the forkserver's idle processes go now, not during the next case.
  lib.setStartMethod('spawn', { force: true });
  return out;
}

// ---- child_process.fork ----

async function forkOnce() {
  const t0 = now();
  const child = track(fork(FORK_START, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const t1 = now();
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal, t: now() })));
  const entry = await new Promise((res, rej) => {
    child.once('message', res);
    child.once('error', rej);
  });
  const t2 = now();
  const x = await exited;
  if (x.code !== 0) throw new Error(`fork_start.mjs exited with ${x.code ?? x.signal}`);
  return { call: Number(t1 - t0), entry: entry - Number(t0), running: Number(t2 - t0), join: Number(x.t - t0) };
}

async function forkStarts(n) {
  const out = { call: [], entry: [], running: [], join: [] };
  for (let i = 0; i < WARMUP; i++) await forkOnce();
  for (let i = 0; i < n; i++) {
    const r = await forkOnce();
    for (const k of Object.keys(out)) out[k].push(r[k]);
  }
  return out;
}

// ---- CPython and C ----

const python = (n) => runPythonPeer(PY_PROCESS, { warm: WARMUP, n });

let cBin;
async function cFloor(n) {
  cBin ??= compileC('spawn_floor.c');
  if (!cBin.path) return { skipped: cBin.why };
  const child = spawnTracked(cBin.path, [String(n), '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await ended(child, 60_000);
  if (r.code !== 0) return { skipped: `spawn_floor failed (${r.code ?? r.signal}) ${r.stderr.trim()}`.trim() };
  return JSON.parse(r.stdout);
}

// ---- the bench ----

const ms = (ns) => (ns === undefined || ns === null || Number.isNaN(ns) ? '—' : (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1));
const per = (total) => Math.ceil(total / ROUNDS);

/** Pooled samples of every round → p50/p99 per stage and sequential starts/s (starts over the sum of their start → join times). */
function summarize(list) {
  if (!list?.length) return undefined;
  const pooled = {};
  for (const r of list) for (const [k, v] of Object.entries(r)) (pooled[k] ??= []).push(...v);
  const out = { n: pooled.join.length };
  for (const [k, v] of Object.entries(pooled)) {
    if (!v.length) continue;
    const [p50, p99] = percentiles(Float64Array.from(v));
    out[k] = { p50, p99 };
  }
  out.perS = out.n / (pooled.join.reduce((s, x) => s + x, 0) / 1e9);
  return out;
}

export async function run() {
  await loadLib();
  const notes = [];
  const warm = warmTarget();
  let pyVersion = '';

  // key, implementation
  const rowsDef = [
    ['ours-spawn', "multiproc Process, 'spawn'"],
    ['ours-warm', `multiproc Process, 'forkserver', warm (pool of ${warm} ready before each start)`],
    ['ours-b2b', "multiproc Process, 'forkserver', back to back (pool drained)"],
    ['fork', 'Node child_process.fork (ESM child)'],
    ['py-fork', "CPython multiprocessing.Process, 'fork'"],
    ['py-spawn', "CPython multiprocessing.Process, 'spawn'"],
    ['py-forkserver', "CPython multiprocessing.Process, 'forkserver'"],
    ['c', 'C fork + exec, 8 bytes back over a pipe (floor)'],
  ];
  const cases = [
    { label: "multiproc 'spawn'", measure: async () => ({ 'ours-spawn': await ours('spawn', per(N['ours-spawn'])) }) },
    { label: "multiproc 'forkserver' warm", measure: async () => ({ 'ours-warm': await ours('warm', per(N['ours-warm'])) }) },
    { label: "multiproc 'forkserver' back to back", measure: async () => ({ 'ours-b2b': await ours('b2b', per(N['ours-b2b'])) }) },
    { label: 'child_process.fork', measure: async () => ({ fork: await forkStarts(per(N.fork)) }) },
    {
      label: 'CPython fork, spawn, forkserver',
      measure: async () => {
        const r = await python({ fork: per(N['py-fork']), spawn: per(N['py-spawn']), forkserver: per(N['py-forkserver']) });
        if (r.skipped) return r;
        pyVersion = r.python;
        return Object.fromEntries(Object.entries(r.methods).map(([m, v]) => [`py-${m}`, v]));
      },
    },
    {
      label: 'C fork + exec',
      measure: async () => {
        const r = await cFloor(per(N.c));
        return r.skipped ? r : { c: r };
      },
    },
  ];
  const runs = await inRounds(cases);
  for (const [label, why] of runs.skipped) notes.push(`${label} skipped: ${why}`);
  const rows = rowsDef.map(([key, impl]) => ({
    key, impl: key.startsWith('py-') && pyVersion ? impl.replace('CPython', `CPython ${pyVersion}`) : impl, r: summarize(runs.results.get(key)),
  }));
  const get = (key) => rows.find((x) => x.key === key)?.r;
  const fk = get('fork');
  const pyfs = get('py-forkserver');
  const ratio = (peer, r, k) => (peer && r ? peer[k].p50 / r[k].p50 : null);
  const pair = (peer, r) => (r && peer ? `${fmtRatio(ratio(peer, r, 'running'))} / ${fmtRatio(ratio(peer, r, 'join'))}` : '—');

  const mainTable = {
    title: 'Start → target running (parent has the first message) and start → join (ms; ratio = peer p50 / this p50, running / join, >1 is faster than the peer)',
    columns: ['implementation', 'n', 'running p50', 'running p99', 'join p50', 'join p99', 'starts/s', 'vs child_process.fork', 'vs CPython forkserver'],
    rows: rows.map(({ r, impl }) => (r
      ? [impl, r.n, ms(r.running.p50), ms(r.running.p99), ms(r.join.p50), ms(r.join.p99), r.perS.toFixed(r.perS < 100 ? 1 : 0), pair(fk, r), pair(pyfs, r)]
      : [impl, 0, 'skipped', '—', '—', '—', '—', '—', '—'])),
    notes: [
      `${ROUNDS} rounds, interleaved (every case once per round, in table order); percentiles over all rounds' starts pooled (n). Starts one after another, each after ${WARMUP} untimed ones per round.`,
      't0 just before start() (fork(); CPython p.start(); C fork()), the Process object, Pipe and target already made. The target gets one end of a duplex Pipe() (socketpair) and sends its start time first thing, then returns; "running" = the parent has that message (ours: await recv(); fork: the \'message\' event; CPython: recv()); "join" = await join() resolved (fork: the \'exit\' event; CPython: join(); C: waitpid).',
      'starts/s = starts / the sum of their start → join times: one start at a time, as fast as they come. The warm forkserver row waits between starts (see the next table), so it is not a sustainable rate.',
      `forkserver warm: before each start the bench waits until the library's pool (MULTIPROC_FORKSERVER_WARM=${warm}) is full and every warm process waits for a target — blocked in poll() on its control socket, read from /proc/PID/syscall — then 20 ms more. Back to back: start → recv → join → next start with no wait, after ${warm + 1} untimed starts that drain the pool; the first ${warm} starts of a burst are as in the warm row.`,
      "CPython: bench/peers/py_process.py, time.perf_counter_ns; 'forkserver' starts its server in the untimed starts. C: bench/peers/spawn_floor.c, the binary re-execs itself and writes its start time to a pipe.",
    ],
  };

  const stage = (r, k) => (r?.[k] ? ms(r[k].p50) : '—');
  const breakdownTable = {
    title: 'Where the time goes: p50 of each stage, ms since t0 (the child\'s entry time is read on the same CLOCK_MONOTONIC)',
    columns: ['implementation', 'start() returned', 'target entered', 'parent has message', 'joined', 'pool ready again'],
    rows: rows.filter((x) => x.r).map(({ r, impl, key }) => [impl, stage(r, 'call'), stage(r, 'entry'), stage(r, 'running'), stage(r, 'join'), key === 'ours-warm' ? stage(r, 'refill') : '—']),
    notes: [
      "start() returned: the synchronous part in the parent (ours 'forkserver': takes a warm process, spawns its replacement, sends the start message). target entered: the target's first statement (ours: after the start message is received, decoded, the function compiled and called).",
      'pool ready again (warm row): from t0 until every warm process waits for a target again, checked every 5 ms once the child has been joined: the replacement\'s boot, the steady rate the pool sustains is about pool size / this.',
    ],
  };
  if (readinessFallback) notes.push('The warm processes\' readiness could not be read from /proc: the warm row slept 500 ms between starts instead.');

  const oursWarm = get('ours-warm');
  const oursB2b = get('ours-b2b');
  const oursSpawn = get('ours-spawn');
  const goals = [
    oursWarm
      ? {
        text: `forkserver start → target running median under 5 ms: warm p50 ${ms(oursWarm.running.p50)} ms (p99 ${ms(oursWarm.running.p99)}; start() itself ${ms(oursWarm.call.p50)} ms)${oursB2b ? `; back to back p50 ${ms(oursB2b.running.p50)} ms` : ''}${pyfs ? `; CPython forkserver p50 ${ms(pyfs.running.p50)} ms` : ''}`,
        pass: oursWarm.running.p50 < 5e6,
      }
      : { text: 'forkserver start → target running median under 5 ms: not measured', pass: null },
    oursSpawn && fk
      ? {
        text: `spawn vs child_process.fork (informative): start → running p50 ${ms(oursSpawn.running.p50)} vs ${ms(fk.running.p50)} ms → ${fmtRatio(ratio(fk, oursSpawn, 'running'))}; start → join p50 ${ms(oursSpawn.join.p50)} vs ${ms(fk.join.p50)} ms → ${fmtRatio(ratio(fk, oursSpawn, 'join'))}`,
        pass: 'info',
      }
      : { text: 'spawn vs child_process.fork: not measured', pass: null },
  ];
  return { name, title, tables: [mainTable, breakdownTable], goals, notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
