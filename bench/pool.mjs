// Pool: tasks/s for a trivial task (map over 100,000 items, chunksize 1 and automatic) and the
// apply() round trip, for our Pool and ThreadPool beside CPython's multiprocessing.Pool and
// piscina (worker threads), all with 2 workers.
// Run alone with `node bench/pool.mjs`, or with the others through `node bench/run.mjs`.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PEERS, ROUNDS, ended, fmtRate, fmtRatio, fmtUs, inRounds, median, now, percentiles, procCpuNs, runPythonPeer, spawnTracked } from './common.mjs';
import { loadLib } from './pipe.mjs';

export const name = 'pool';
export const title = 'Pool: map throughput and apply round trip (trivial task x*x, 2 workers)';

const WORKERS = 2;
const MAP_N = 100_000;
/** map calls with the automatic chunk size per round (each is short). */
const AUTO_REPS = 10;
const APPLY_N = 2000;
// A fresh worker process runs its code in V8's lower tiers for its first ~2,000 tasks: then our
// apply p50 was 50–150 µs, and 7 µs once optimized (medians of blocks of 500 calls). Every
// implementation gets the same warm-up, so the rows compare warmed pools, as a service meets them.
const APPLY_WARM = 2000;
/** apply and bare Pipe round trips alternate in blocks of this many. */
const APPLY_BLOCK = 200;
/** A message of the size of an apply task ([kind, target, args]). */
const APPLY_SIZED = [1, 0, [0]];

const PY_POOL = join(PEERS, 'py_pool.py');
const PISCINA = join(PEERS, 'piscina_pool.mjs');

const square = (x) => x * x;

/** One round of ours with `Kind` (Pool or ThreadPool): apply samples, map chunksize 1, map auto. */
async function ours(kind) {
  const lib = await loadLib();
  const pool = new lib[kind](WORKERS);
  try {
    const items = Array.from({ length: MAP_N }, (_, i) => i);
    await pool.map(square, items.slice(0, 1000), { chunksize: 1 });
    await pool.map(square, items);
    for (let i = 0; i < APPLY_WARM; i++) await pool.apply(square, [i]);
    // Pool: apply in blocks alternating with blocks of bare Pipe round trips to a process of the
    // same kind, so that both see the same moments of a shared machine.
    const echo = kind === 'Pool' ? await echoProcess(lib) : null;
    const samples = new Float64Array(APPLY_N);
    const pipeSamples = new Float64Array(echo ? APPLY_N : 0);
    let applyNs = 0, pipeNs = 0;
    for (let block = 0; block < APPLY_N; block += APPLY_BLOCK) {
      let t0 = now();
      for (let i = block; i < block + APPLY_BLOCK; i++) {
        const t = now();
        await pool.apply(square, [i]);
        samples[i] = Number(now() - t);
      }
      applyNs += Number(now() - t0);
      if (!echo) continue;
      t0 = now();
      for (let i = block; i < block + APPLY_BLOCK; i++) {
        const t = now();
        echo.conn.send(APPLY_SIZED);
        await echo.conn.recv();
        pipeSamples[i] = Number(now() - t);
      }
      pipeNs += Number(now() - t0);
    }
    if (echo) await echo.end();
    const workers = kind === 'Pool' ? childPids() : [];
    const cpu0 = process.cpuUsage();
    const wcpu0 = workers.map((pid) => procCpuNs(pid, 0));
    let t = now();
    const r1 = await pool.map(square, items, { chunksize: 1 });
    const cs1Ns = Number(now() - t);
    const cpu = process.cpuUsage(cpu0);
    const wcpu = workers.map((pid, i) => procCpuNs(pid, 0) - wcpu0[i]).reduce((a, b) => a + b, 0);
    t = now();
    let r2;
    for (let k = 0; k < AUTO_REPS; k++) r2 = await pool.map(square, items);
    const autoNs = Number(now() - t);
    if (r1[MAP_N - 1] !== (MAP_N - 1) ** 2 || r2[MAP_N - 1] !== (MAP_N - 1) ** 2) throw new Error(`${kind}: wrong result`);
    return {
      apply: rtt(samples, applyNs),
      cs1: MAP_N / (cs1Ns / 1e9),
      auto: (MAP_N * AUTO_REPS) / (autoNs / 1e9),
      // CPU per item of the chunksize-1 map: the submitting process (scheduling, encoding, results) and the workers.
      cs1ParentCpu: (cpu.user + cpu.system) / MAP_N,
      ...(kind === 'Pool' ? { cs1WorkerCpu: wcpu / 1000 / MAP_N, pipe: rtt(pipeSamples, pipeNs) } : {}),
    };
  } finally {
    await pool.terminate();
  }
}

/** Our children that are running (the pool's workers), from /proc. */
function childPids() {
  const out = [];
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.push(...readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch { /* thread gone */ }
  }
  return out;
}


/** A child echoing on a bare Pipe (recvSync, send), warmed: what apply() adds to. */
async function echoProcess(lib) {
  const [a, b] = lib.Pipe();
  const p = new lib.Process({
    target: (c) => {
      for (;;) {
        let m;
        try { m = c.recvSync(); } catch { return; }
        c.send(m);
      }
    },
    args: [b],
    daemon: true,
  });
  p.start();
  b.close();
  for (let i = 0; i < APPLY_WARM; i++) { a.send(APPLY_SIZED); await a.recv(); }
  return {
    conn: a,
    async end() {
      a.close();
      await p.join();
    },
  };
}

function rtt(samples, totalNs) {
  const s = Float64Array.from(samples);
  const [p50, p99] = percentiles(s);
  return { n: s.length, p50, p99, perS: s.length / (totalNs / 1e9) };
}

async function python() {
  const r = await runPythonPeer(PY_POOL, { workers: WORKERS, map_n: MAP_N, auto_reps: AUTO_REPS, apply_n: APPLY_N, apply_warm: APPLY_WARM });
  if (r.skipped) return r;
  return {
    version: r.python,
    apply: rtt(r.apply.samples, r.apply.total_ns),
    cs1: r.cs1.items / (r.cs1.ns / 1e9),
    auto: r.auto.items / (r.auto.ns / 1e9),
  };
}

async function piscina() {
  const child = spawnTracked(process.execPath, [PISCINA, JSON.stringify({ workers: WORKERS, map_n: MAP_N, apply_n: APPLY_N, apply_warm: APPLY_WARM })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await ended(child, 180_000);
  if (r.code !== 0) {
    const why = /Cannot find (package|module) 'piscina'/.test(r.stderr) ? 'piscina is not installed (npm install)' : `failed (${r.code ?? r.signal}): ${r.stderr.trim().split('\n').pop()}`;
    return { skipped: why };
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return { version: out.version, apply: rtt(out.apply.samples, out.apply.total_ns), cs1: out.cs1.items / (out.cs1.ns / 1e9) };
}

/** Round trips: p50/p99 are the medians of the rounds'; calls/s over all of them. */
function combine(list) {
  if (!list?.length) return undefined;
  const n = list.reduce((s, x) => s + x.n, 0);
  const secs = list.reduce((s, x) => s + x.n / x.perS, 0);
  return { n, p50: median(list.map((x) => x.p50)), p99: median(list.map((x) => x.p99)), perS: n / secs };
}

export async function run() {
  await loadLib();
  const notes = [];
  const versions = {};
  const cases = [
    { label: 'multiproc Pool', measure: async () => prefixed('pool', await ours('Pool')) },
    { label: 'multiproc ThreadPool', measure: async () => prefixed('thread', await ours('ThreadPool')) },
    {
      label: 'CPython multiprocessing.Pool',
      measure: async () => {
        const r = await python();
        if (r.skipped) return r;
        versions.py = r.version;
        return prefixed('py', r);
      },
    },
    {
      label: 'piscina',
      measure: async () => {
        const r = await piscina();
        if (r.skipped) return r;
        versions.piscina = r.version;
        return prefixed('piscina', r);
      },
    },
  ];
  const runs = await inRounds(cases);
  for (const [label, why] of runs.skipped) notes.push(`${label} skipped: ${why}`);
  const rate = (key) => median(runs.results.get(key) ?? []);
  const apply = (key) => combine(runs.results.get(key));
  const impl = {
    pool: 'multiproc Pool (processes)',
    thread: 'multiproc ThreadPool (worker threads)',
    py: `CPython ${versions.py ?? ''} multiprocessing.Pool`.replace('  ', ' '),
    piscina: `piscina ${versions.piscina ?? ''} (worker threads)`.replace('  ', ' '),
  };
  const pyCs1 = rate('py.cs1');
  const pyAuto = rate('py.auto');
  const pisCs1 = rate('piscina.cs1');
  const mapRow = (key, label, chunks, peerPy, peerPis) => {
    const r = rate(key);
    return [label, chunks, r === null ? 'skipped' : `${fmtRate(r)}/s`, peerPy && r ? fmtRatio(r / peerPy) : '—', peerPis && r ? fmtRatio(r / peerPis) : '—'];
  };
  const mapTable = {
    title: `map over ${MAP_N.toLocaleString('en')} items, items/s (ratio = ours / peer, >1 is faster)`,
    columns: ['implementation', 'chunksize', 'items/s', 'vs CPython', 'vs piscina'],
    rows: [
      mapRow('pool.cs1', impl.pool, '1', pyCs1, pisCs1),
      mapRow('pool.auto', impl.pool, 'auto', pyAuto, null),
      mapRow('thread.cs1', impl.thread, '1', pyCs1, pisCs1),
      mapRow('thread.auto', impl.thread, 'auto', pyAuto, null),
      mapRow('py.cs1', impl.py, '1', null, null),
      mapRow('py.auto', impl.py, 'auto', null, null),
      mapRow('piscina.cs1', impl.piscina, '1 (a run() per item)', null, null),
    ],
    notes: [
      `${ROUNDS} rounds, interleaved; the median round. Each round starts a fresh pool of ${WORKERS} workers and warms it (a map of 1,000 items with chunksize 1, one with the default, ${APPLY_WARM} applies).`,
      `chunksize 1: one map call of ${MAP_N.toLocaleString('en')} items, one task each. auto: ${AUTO_REPS} map calls of ${MAP_N.toLocaleString('en')} items with the default chunk size (Python's: about 4 tasks per worker), timed together.`,
      'piscina has no map: its row is 100,000 run() calls submitted at once and awaited with Promise.all (bench/peers/piscina_pool.mjs). CPython: bench/peers/py_pool.py, its default start method (fork).',
      `The machine has ${WORKERS} workers' worth of CPUs or fewer: the submitting process competes with them.`,
    ],
  };
  const applyRow = (key, label) => {
    const r = apply(key);
    const py = apply('py.apply');
    const pis = apply('piscina.apply');
    if (!r) return [label, 0, 'skipped', '—', '—', '—', '—'];
    return [label, r.n, fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS), py ? fmtRatio(py.p50 / r.p50) : '—', pis ? fmtRatio(pis.p50 / r.p50) : '—'];
  };
  const applyTable = {
    title: 'apply() round trip, µs (sequential awaited calls; ratio = peer p50 / ours, >1 is faster)',
    columns: ['implementation', 'n', 'p50', 'p99', 'calls/s', 'vs CPython', 'vs piscina'],
    rows: [applyRow('pool.apply', impl.pool), applyRow('pool.pipe', 'multiproc bare Pipe round trip, same processes (a socket, for comparison)'), applyRow('thread.apply', impl.thread), applyRow('py.apply', impl.py), applyRow('piscina.apply', impl.piscina)],
    notes: [
      `${APPLY_N.toLocaleString('en')} sequential calls per round after ${APPLY_WARM.toLocaleString('en')} warm-up ones (a fresh worker's first ~2,000 tasks run before V8 has optimized its code, several times slower; every row gets the same warm-up), each timed; p50/p99 are the medians of the rounds' own. Ours: await pool.apply(square, [i]); CPython: pool.apply(_sq, (i,)); piscina: await pool.run(i).`,
      `The bare Pipe row: a child process echoing with recvSync, this side send + await recv() with a message of an apply task's size, in blocks of ${APPLY_BLOCK} alternating with the Pool's applies (same moments of the machine). The pool's own wire is two shared-memory rings per worker (README, Pool), which skips the socket's system calls and its "sync" wake-ups; the Pipe row shows what the same round trip costs over a socket.`,
    ],
  };
  const cpuRow = (key, label) => {
    const parent = rate(`${key}.cs1ParentCpu`);
    const worker = rate(`${key}.cs1WorkerCpu`);
    return [label, parent === null ? '—' : parent.toFixed(2), worker === null ? '—' : worker.toFixed(2)];
  };
  const costTable = {
    title: 'Where the time goes in the chunksize-1 map: CPU µs per item',
    columns: ['implementation', 'submitting process', 'workers (together)'],
    rows: [cpuRow('pool', impl.pool), cpuRow('thread', impl.thread)],
    notes: [
      'The submitting process schedules, encodes the tasks and decodes the results; the workers decode, run x*x and encode. Process workers\' CPU from /proc (10 ms ticks); ThreadPool threads count in the submitting process.',
    ],
  };
  const oursApply = apply('pool.apply');
  const oursCs1 = rate('pool.cs1');
  const oursAuto = rate('pool.auto');
  const goals = [
    oursApply
      ? { text: `apply round trip p50 at most 25 µs: ${fmtUs(oursApply.p50)} µs (p99 ${fmtUs(oursApply.p99)})${apply('py.apply') ? `; CPython ${fmtUs(apply('py.apply').p50)}` : ''}${apply('piscina.apply') ? `; piscina ${fmtUs(apply('piscina.apply').p50)}` : ''}`, pass: oursApply.p50 <= 25_000 }
      : { text: 'apply round trip p50 at most 25 µs: not measured', pass: null },
    oursCs1
      ? { text: `map with chunksize 1 at least 300k items/s: ${fmtRate(oursCs1)}/s${pyCs1 ? `; CPython ${fmtRate(pyCs1)}/s` : ''}${pisCs1 ? `; piscina ${fmtRate(pisCs1)}/s` : ''}`, pass: oursCs1 >= 300_000 }
      : { text: 'map with chunksize 1 at least 300k items/s: not measured', pass: null },
    oursAuto && pyAuto
      ? { text: `map with automatic chunks at least 3x CPython's: ${fmtRate(oursAuto)}/s vs ${fmtRate(pyAuto)}/s → ${fmtRatio(oursAuto / pyAuto)}`, pass: oursAuto >= 3 * pyAuto }
      : { text: "map with automatic chunks at least 3x CPython's: not measured", pass: null },
  ];
  return { name, title, tables: [mapTable, applyTable, costTable], goals, notes };
}

function prefixed(prefix, r) {
  const out = {};
  for (const [k, v] of Object.entries(r)) if (k !== 'version') out[`${prefix}.${k}`] = v;
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
