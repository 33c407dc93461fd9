// Managers: a dict proxy's set and get round trips (Manager().dict()) beside CPython's, the
// Listener/Client round trip over TCP beside CPython's, and Manager() start and shutdown.
// Run alone with `node bench/manager.mjs`, or with the others through `node bench/run.mjs`.
import { join } from 'node:path';
import {
  PEERS, ROUNDS, combineRtt, ended, fmtRate, fmtRatio, fmtUs, inRounds, median, now, percentiles, runPythonPeer, spawnTracked,
} from './common.mjs';
import { loadLib } from './pipe.mjs';

export const name = 'manager';
export const title = 'Managers: dict proxy round trips, Listener/Client, Manager() start';

const PY_PEER = join(PEERS, 'py_manager.py');
const CONN_PEER = join(PEERS, 'conn_peer.mjs');
/** Per round: set+get pairs (each op timed), Listener/Client round trips, warm-up of each. */
const N = 5000;
// A fresh manager process runs its code in V8's lower tiers for its first few thousand requests
// (several times slower); every row gets the same warm-up, so they compare warmed servers.
const WARM = 2000;
const BUDGET_MS = 2500;
const START_N = 3;
const B64 = Buffer.alloc(64, 0x78);

function summary(samples, n, elapsedNs) {
  const [p50, p99] = percentiles(samples, n);
  return { n, p50, p99, perS: n / (Number(elapsedNs) / 1e9) };
}

/** n × (d.set(i, i); d.get(i)) on a fresh Manager().dict(), every op timed: awaited, or the …Sync twins. */
async function oursDict(sync, spinMs) {
  const { Manager } = await loadLib();
  const m = await Manager(spinMs === undefined ? {} : { spinMs });
  try {
    const d = await m.dict();
    const set = sync ? (i) => d.setSync(i, i) : (i) => d.set(i, i);
    const get = sync ? (i) => d.getSync(i) : (i) => d.get(i);
    for (let i = 0; i < WARM; i++) {
      await set(i);
      await get(i);
    }
    const samples = new Float64Array(2 * N);
    let k = 0;
    const deadline = now() + BigInt(BUDGET_MS) * 1_000_000n;
    const start = now();
    if (sync) {
      for (let i = 0; i < N; i++) {
        const t0 = now();
        d.setSync(i, i);
        const t1 = now();
        if (d.getSync(i) !== i) throw new Error('dict proxy: wrong value back');
        const t2 = now();
        samples[k++] = Number(t1 - t0);
        samples[k++] = Number(t2 - t1);
        if (t2 > deadline) break;
      }
    } else {
      for (let i = 0; i < N; i++) {
        const t0 = now();
        await d.set(i, i);
        const t1 = now();
        if ((await d.get(i)) !== i) throw new Error('dict proxy: wrong value back');
        const t2 = now();
        samples[k++] = Number(t1 - t0);
        samples[k++] = Number(t2 - t1);
        if (t2 > deadline) break;
      }
    }
    return summary(samples, k, now() - start);
  } finally {
    await m.shutdown();
  }
}

/** sendBytes(64 B) + await recvBytes() to a Client in another node process, over TCP loopback. */
async function oursConn() {
  const { Listener } = await loadLib();
  const l = new Listener({ address: ['127.0.0.1', 0] });
  const child = spawnTracked(process.execPath, [CONN_PEER, ...l.address.map(String)], { stdio: ['ignore', 'inherit', 'inherit'] });
  const c = await l.accept();
  l.close();
  for (let i = 0; i < WARM; i++) {
    c.sendBytes(B64);
    await c.recvBytes();
  }
  const samples = new Float64Array(N);
  let k = 0;
  const deadline = now() + BigInt(BUDGET_MS) * 1_000_000n;
  const start = now();
  while (k < N) {
    const t0 = now();
    c.sendBytes(B64);
    await c.recvBytes();
    const t1 = now();
    samples[k++] = Number(t1 - t0);
    if (t1 > deadline) break;
  }
  const elapsed = now() - start;
  c.close();
  const r = await ended(child);
  if (r.code !== 0) throw new Error(`conn_peer exited with ${r.code ?? r.signal}`);
  return summary(samples, k, elapsed);
}

/** Manager() until a first dict op is done, and shutdown(). */
async function oursStart() {
  const { Manager } = await loadLib();
  const starts = [], stops = [];
  for (let i = 0; i < START_N; i++) {
    const t0 = now();
    const m = await Manager();
    const d = await m.dict();
    await d.set(1, 1);
    const t1 = now();
    await m.shutdown();
    starts.push(Number(t1 - t0));
    stops.push(Number(now() - t1));
  }
  return { start: median(starts), shutdown: median(stops) };
}

const pyRtt = (x) => ({ n: x.n, p50: x.p50_ns, p99: x.p99_ns, perS: x.per_s });

export async function run() {
  await loadLib();
  const notes = [];
  let pyVersion = '';
  const cases = [
    { label: 'dict: multiproc async', measure: async () => ({ 'ours-dict': await oursDict(false) }) },
    { label: 'dict: multiproc …Sync', measure: async () => ({ 'ours-dict-sync': await oursDict(true) }) },
    { label: 'dict: multiproc async, spinMs 0', measure: async () => ({ 'ours-dict-0': await oursDict(false, 0) }) },
    { label: 'dict: multiproc …Sync, spinMs 0', measure: async () => ({ 'ours-dict-sync-0': await oursDict(true, 0) }) },
    { label: 'Listener/Client: multiproc', measure: async () => ({ 'ours-conn': await oursConn() }) },
    { label: 'start: multiproc', measure: async () => ({ 'ours-start': await oursStart() }) },
    {
      label: 'CPython (dict, Listener/Client, start)',
      measure: async () => {
        const r = await runPythonPeer(PY_PEER, { n: N, warm: WARM, budget_s: BUDGET_MS / 1000, conn_n: N, start_n: START_N });
        if (r.skipped) return r;
        pyVersion = r.python;
        return { 'py-dict': pyRtt(r.dict), 'py-conn': pyRtt(r.conn), 'py-start': { start: r.start.start_ns, shutdown: r.start.shutdown_ns } };
      },
    },
  ];
  const { results, skipped } = await inRounds(cases);
  for (const [label, why] of skipped) notes.push(`${label} skipped: ${why}`);
  const rtt = (key) => combineRtt(results.get(key));
  const py = `CPython ${pyVersion}`.trim();
  const rows = [];
  const row = (impl, what, r, ref) => r && rows.push([impl, what, fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS), ref ? fmtRatio(ref.p50 / r.p50) : '—']);
  const [od, ods, pd, oc, pc] = [rtt('ours-dict'), rtt('ours-dict-sync'), rtt('py-dict'), rtt('ours-conn'), rtt('py-conn')];
  row('multiproc Manager().dict(): await d.set(i, i) / await d.get(i)', 'one op', od, pd);
  row('multiproc Manager().dict(): d.setSync(i, i) / d.getSync(i)', 'one op', ods, pd);
  row('multiproc Manager({ spinMs: 0 }).dict(): await set / get', 'one op', rtt('ours-dict-0'), pd);
  row('multiproc Manager({ spinMs: 0 }).dict(): setSync / getSync', 'one op', rtt('ours-dict-sync-0'), pd);
  row(`${py} Manager().dict(): d[i] = i / d[i]`, 'one op', pd, pd);
  row('multiproc Listener/Client (TCP): sendBytes + await recvBytes()', '64 B', oc, pc);
  row(`${py} Listener/Client (TCP): send_bytes + recv_bytes`, '64 B', pc, pc);
  const opsTable = {
    title: 'Round trips through a manager and over Listener/Client (µs; ratio = CPython p50 / this p50, >1 is faster)',
    columns: ['implementation', 'per', 'p50 µs', 'p99 µs', 'ops/s', 'vs CPython'],
    rows,
    notes: [
      `${ROUNDS} rounds, interleaved; in each a fresh manager (and server process) or connection, ${WARM.toLocaleString('en')} untimed set+get pairs or round trips (a fresh server's code is several times slower before V8 has optimized it; every row gets the same), then up to ${N} timed (each op on its own), at most ${BUDGET_MS} ms.`,
      'The manager server is a separate process in both; ours shares one link per process and manager (requests carry ids): two shared-memory rings with eventfd doorbells, beside the socket (README, Managers); CPython gives each proxy its own connection, with a server thread serving it.',
      'Without spinMs, waits on both ends spin 0.05 ms before they sleep (the server busy-polls its clients that long after each request): that wins on an idle machine and loses when other processes keep the CPUs busy; spinMs 0 sleeps at once, as CPython does.',
      'Listener/Client: the parent listens on 127.0.0.1 and times the round trip to a child that connected with Client and echoes; ours: async receive, CPython: blocking.',
    ],
  };
  const st = (key) => {
    const list = results.get(key);
    return list ? { start: median(list.map((x) => x.start)), shutdown: median(list.map((x) => x.shutdown)) } : undefined;
  };
  const [os_, ps] = [st('ours-start'), st('py-start')];
  const startRows = [];
  const ms = (ns) => (ns / 1e6).toFixed(1);
  if (os_) startRows.push(['multiproc Manager() + first dict op', ms(os_.start), ms(os_.shutdown), ps ? fmtRatio(ps.start / os_.start) : '—']);
  if (ps) startRows.push([`${py} Manager() + first dict op (fork)`, ms(ps.start), ms(ps.shutdown), '1.00x']);
  const startTable = {
    title: 'Manager() start and shutdown (ms, medians; ratio = CPython start / this start)',
    columns: ['implementation', 'start ms', 'shutdown ms', 'start vs CPython'],
    rows: startRows,
    notes: ['Ours starts the server as a Process with the current start method (spawn by default: a fresh node); CPython forks.'],
  };
  const goal = (what, r) => {
    if (!r || !pd) return { text: `${what} vs CPython: not measured`, pass: null };
    const byP50 = pd.p50 / r.p50;
    const byMean = r.perS / pd.perS;
    return {
      text: `${what}: p50 ${fmtUs(r.p50)} µs vs CPython ${fmtUs(pd.p50)} µs → ${byP50.toFixed(2)}x; mean ${fmtUs(1e9 / r.perS)} vs ${fmtUs(1e9 / pd.perS)} µs → ${byMean.toFixed(2)}x (goal: both ≥ 3x)`,
      pass: byP50 >= 3 && byMean >= 3,
    };
  };
  const goals = [goal('dict proxy op (set or get), await', od), goal('dict proxy op (set or get), …Sync (blocking, as CPython\'s proxies)', ods)];
  return { name, title, tables: [opsTable, startTable], goals, notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
