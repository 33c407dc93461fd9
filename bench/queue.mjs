// Queue: one-way throughput and round trip between two processes — ours beside CPython's
// multiprocessing.Queue and SimpleQueue, child_process.fork() IPC, worker_threads MessagePort and
// the C floors (an SPSC shared-memory ring; futex ping-pong). Run alone with `node bench/queue.mjs`,
// or with the others through `node bench/run.mjs`.
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import {
  PEERS, ROUNDS, combineRtt, compileC, fmtMBs, fmtRate, fmtRatio, fmtUs, inRounds, median, now, percentiles,
  procCpuNs, runPythonPeer,
} from './common.mjs';
import { OBJ, forkOneway, forkRtt, loadLib } from './pipe.mjs';

export const name = 'queue';
export const title = 'Queue: one-way throughput and round trip between two processes';

const PAYLOADS = { int: 1, obj: OBJ, b64: Buffer.alloc(64, 120), b64k: Buffer.alloc(65536, 120) };
const LABEL = { int: 'small int', obj: 'object', b64: '64 B Buffer', b64k: '64 KiB Buffer' };
const BYTES = { b64: 64, b64k: 65536 };
/** Items per round, one way (a tenth as many more before the clock starts). */
const ONEWAY_N = { int: 1_000_000, obj: 300_000, b64: 600_000, b64k: 30_000 };
const PEER_ONEWAY_N = { int: 60_000, obj: 40_000, b64: 60_000, b64k: 3_000 }; // CPython, fork IPC, MessagePort
const RTT_N = { sync: 20_000, sync0: 4_000, async: 5_000, async0: 3_000 };
const PEER_RTT_N = 4_000;
const PY = join(PEERS, 'py_queue.py');
const PORT_PEER = join(PEERS, 'port_peer.mjs');


// ---- ours ----

/** The consumer of a one-way run: gets warm items, says so, gets n more, says done. */
async function sink(q, ctl, warm, n, useAsync) {
  ctl.putSync('ready');
  for (let i = 0; i < warm; i++) if (useAsync) await q.get(); else q.getSync();
  ctl.putSync('warm');
  if (useAsync) for (let i = 0; i < n; i++) await q.get();
  else for (let i = 0; i < n; i++) q.getSync();
  ctl.putSync('done');
}

async function oursOneway(lib, payload, mode, n) {
  const { Queue, Process } = lib;
  const q = new Queue();
  const ctl = new Queue();
  const warm = Math.ceil(n / 10);
  const useAsync = mode === 'async';
  const p = new Process({ target: sink, args: [q, ctl, warm, n, useAsync], daemon: true });
  p.start();
  ctl.getSync();
  const x = PAYLOADS[payload];
  for (let i = 0; i < warm; i++) if (useAsync) await q.put(x); else q.putSync(x);
  ctl.getSync();
  const cpu0 = process.cpuUsage();
  const child0 = procCpuNs(p.pid);
  const t0 = now();
  if (useAsync) for (let i = 0; i < n; i++) await q.put(x);
  else for (let i = 0; i < n; i++) q.putSync(x);
  if (useAsync) await ctl.get(); else ctl.getSync();
  const ns = Number(now() - t0);
  const cpu = process.cpuUsage(cpu0);
  const childNs = procCpuNs(p.pid) - child0;
  await p.join();
  q.close();
  ctl.close();
  if (p.exitCode !== 0) throw new Error(`the consumer exited with ${p.exitCode}`);
  return { n, msgS: n / (ns / 1e9), mbS: BYTES[payload] ? (n * BYTES[payload]) / (ns / 1e3) : null, putCpu: ((cpu.user + cpu.system) * 1e3) / n, getCpu: childNs / n };
}

/** The other side of a round trip: gets from a, puts into b. */
async function echo(a, b, total, useAsync) {
  if (useAsync) for (let i = 0; i < total; i++) await b.put(await a.get());
  else for (let i = 0; i < total; i++) b.putSync(a.getSync());
}

async function oursRtt(lib, mode, n) {
  const { Queue, Process } = lib;
  const opts = mode.endsWith('0') ? { spinMs: 0 } : {};
  const a = new Queue(opts);
  const b = new Queue(opts);
  const useAsync = mode.startsWith('async');
  const warm = Math.max(500, Math.ceil(n / 10));
  const p = new Process({ target: echo, args: [a, b, n + warm, useAsync], daemon: true });
  p.start();
  const rt = new Float64Array(n);
  let t0 = 0n;
  for (let i = 0; i < n + warm; i++) {
    if (i === warm) t0 = now();
    const t = now();
    if (useAsync) {
      await a.put(1);
      await b.get();
    } else {
      a.putSync(1);
      b.getSync();
    }
    if (i >= warm) rt[i - warm] = Number(now() - t);
  }
  const total = Number(now() - t0);
  await p.join();
  a.close();
  b.close();
  const [p50, p99] = percentiles(rt);
  return { n, p50, p99, perS: n / (total / 1e9) };
}

// ---- child_process.fork() IPC and worker_threads ----

/** n timed round trips (after n/10 untimed) over a send function and a message event. */
function pingPong(send, on, off, n) {
  const warm = Math.max(500, Math.ceil(n / 10));
  const rt = new Float64Array(n);
  return new Promise((resolve) => {
    let i = 0;
    let t = now();
    let t0 = 0n;
    const onMessage = () => {
      const t1 = now();
      if (i >= warm) rt[i - warm] = Number(t1 - t);
      i++;
      if (i === warm) t0 = now();
      if (i === n + warm) {
        off(onMessage);
        const [p50, p99] = percentiles(rt);
        resolve({ n, p50, p99, perS: n / (Number(now() - t0) / 1e9) });
        return;
      }
      t = now();
      send(1);
    };
    on(onMessage);
    send(1);
  });
}

async function portOneway(payload, n) {
  const warm = Math.ceil(n / 10);
  const w = new Worker(PORT_PEER, { workerData: { role: 'sink', warm, n } });
  const next = () => new Promise((r) => w.once('message', r));
  const x = PAYLOADS[payload];
  let got = next();
  for (let i = 0; i < warm; i++) w.postMessage(x);
  await got;
  got = next();
  const t0 = now();
  for (let i = 0; i < n; i++) w.postMessage(x);
  await got;
  const ns = Number(now() - t0);
  await w.terminate();
  return { n, msgS: n / (ns / 1e9), mbS: BYTES[payload] ? (n * BYTES[payload]) / (ns / 1e3) : null };
}

async function portRtt(n) {
  const w = new Worker(PORT_PEER, { workerData: { role: 'echo' } });
  const r = await pingPong((m) => w.postMessage(m), (fn) => w.on('message', fn), (fn) => w.off('message', fn), n);
  await w.terminate();
  return r;
}

// ---- the C floors ----

let ringBin;
let syncBin;
function cRun(which, args) {
  const bin = which === 'ring' ? (ringBin ??= compileC('ring_floor.c')) : (syncBin ??= compileC('sync_floor.c', ['-lpthread']));
  if (!bin.path) return { skipped: bin.why };
  const r = spawnSync(bin.path, args.map(String), { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return { skipped: `${which} floor failed: ${(r.stderr || r.signal || '').trim()}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// ---- the bench ----

export async function run() {
  const lib = await loadLib();
  const notes = [];
  const per = (n) => Math.ceil(n / ROUNDS);
  let pyVersion = '';

  // 1. one way
  const owCases = [];
  for (const payload of Object.keys(ONEWAY_N)) {
    for (const mode of ['sync', 'async']) {
      owCases.push({ label: `one way: multiproc ${mode} ${LABEL[payload]}`, measure: async () => ({ [`ours-${mode}-${payload}`]: await oursOneway(lib, payload, mode, per(ONEWAY_N[payload]) * (mode === 'async' ? 1 : 2)) }) });
    }
    owCases.push({ label: `one way: fork IPC ${LABEL[payload]}`, measure: async () => ({ [`fork-${payload}`]: await forkOneway('advanced', payload, per(PEER_ONEWAY_N[payload]) * 2) }) });
    owCases.push({ label: `one way: MessagePort ${LABEL[payload]}`, measure: async () => ({ [`port-${payload}`]: await portOneway(payload, per(PEER_ONEWAY_N[payload]) * 2) }) });
  }
  owCases.push({
    label: 'one way and round trip: CPython',
    measure: async () => {
      const oneway = Object.fromEntries(Object.entries(PEER_ONEWAY_N).map(([k, v]) => [k, per(v)]));
      const r = await runPythonPeer(PY, { oneway, rtt_n: per(PEER_RTT_N) });
      if (r.skipped) return r;
      pyVersion = r.python;
      const out = {};
      for (const [k, v] of Object.entries(r.oneway)) {
        const payload = k.split('-')[1];
        out[`py-${k}`] = { n: v.n, msgS: v.n / (v.ns / 1e9), mbS: BYTES[payload] ? (v.n * BYTES[payload]) / (v.ns / 1e3) : null };
      }
      for (const [k, list] of Object.entries(r.rtt)) {
        const [p50, p99] = percentiles(list);
        out[`py-rtt-${k}`] = { n: list.length, p50, p99, perS: list.length / (list.reduce((s, x) => s + x, 0) / 1e9) };
      }
      return out;
    },
  });
  owCases.push({
    label: 'one way: C ring floor',
    measure: async () => {
      const small = cRun('ring', [64, 5_000_000]);
      if (small.skipped) return small;
      const big = cRun('ring', [65536, 100_000]);
      return { 'c-b64': { n: 5_000_000, msgS: small.msgs_per_s, mbS: small.gb_per_s * 1000 }, 'c-b64k': { n: 100_000, msgS: big.msgs_per_s, mbS: big.gb_per_s * 1000 } };
    },
  });

  // 2. round trips
  const rttCases = [
    ...Object.keys(RTT_N).map((mode) => ({ label: `round trip: multiproc ${mode}`, measure: async () => ({ [`rtt-${mode}`]: await oursRtt(lib, mode, per(RTT_N[mode])) }) })),
    { label: 'round trip: fork IPC', measure: async () => ({ 'rtt-fork': await forkRtt('advanced', 'int', per(PEER_RTT_N)) }) },
    { label: 'round trip: MessagePort', measure: async () => ({ 'rtt-port': await portRtt(per(PEER_RTT_N)) }) },
    {
      label: 'round trip: C futex floor',
      measure: async () => {
        const parked = cRun('sync', ['pingpong', per(PEER_RTT_N), 0]);
        if (parked.skipped) return parked;
        const spin = cRun('sync', ['pingpong', per(RTT_N.sync), 50]);
        return { 'rtt-c-parked': { n: per(PEER_RTT_N), perS: 1e9 / parked.p50, ...parked }, 'rtt-c-spin': { n: per(RTT_N.sync), perS: 1e9 / spin.p50, ...spin } };
      },
    },
  ];

  const ow = await inRounds(owCases);
  const rt = await inRounds(rttCases);
  for (const [label, why] of [...ow.skipped, ...rt.skipped]) notes.push(`${label} skipped: ${why}`);
  const py = pyVersion ? `CPython ${pyVersion}` : 'CPython';
  const medOf = (key, field) => median((ow.results.get(key) ?? []).map((x) => x[field]));

  // One-way table: rows per payload; ratio against CPython's Queue.
  const owRows = [];
  const pyQ = (payload) => medOf(`py-Queue-${payload}`, 'msgS');
  for (const payload of Object.keys(ONEWAY_N)) {
    const impls = [
      [`ours-sync-${payload}`, 'multiproc Queue: putSync → getSync'],
      [`ours-async-${payload}`, 'multiproc Queue: await put → await get'],
      [`py-Queue-${payload}`, `${py} multiprocessing.Queue`],
      [`py-SimpleQueue-${payload}`, `${py} multiprocessing.SimpleQueue`],
      [`fork-${payload}`, "child_process.fork() IPC 'advanced' (child → parent)"],
      [`port-${payload}`, 'worker_threads MessagePort (threads, not processes)'],
      ...(payload === 'b64' || payload === 'b64k' ? [[`c-${payload}`, 'C SPSC shared-memory ring, fixed slots (floor)']] : []),
    ];
    for (const [key, impl] of impls) {
      const msgS = medOf(key, 'msgS');
      if (msgS === null) continue;
      const mbS = medOf(key, 'mbS');
      const putCpu = medOf(key, 'putCpu');
      const getCpu = medOf(key, 'getCpu');
      owRows.push([impl, LABEL[payload], fmtRate(msgS), BYTES[payload] ? fmtMBs(mbS) : '—', fmtRatio(pyQ(payload) ? msgS / pyQ(payload) : null),
        putCpu === null ? '—' : `${putCpu.toFixed(0)} / ${getCpu.toFixed(0)}`]);
    }
  }
  const owTable = {
    title: 'One way: the parent puts, a child gets (ratio = this rate / CPython Queue, >1 is faster)',
    columns: ['implementation', 'payload', 'items/s', 'MB/s', 'vs CPython Queue', 'CPU ns/item put / get'],
    rows: owRows,
    notes: [
      `${ROUNDS} rounds, interleaved; in each, fresh processes and queues; multiproc: ${Object.entries(ONEWAY_N).map(([k, v]) => `${per(v) * 2} × ${LABEL[k]}`).join(', ')} (async: half) after a tenth as many untimed; peers: ${Object.entries(PEER_ONEWAY_N).map(([k, v]) => `${per(v) * 2} × ${LABEL[k]}`).join(', ')} (CPython: half). Figures: the median round.`,
      'The clock runs from the first timed put until the consumer says it has got the last one (CPython: an Event; multiproc: a second Queue; fork IPC: from the warm-th to the last message received).',
      'CPU ns/item: user + system time of the putting process and of the getting one over the timed part, per item (a side that waits spinning counts its spin).',
      'Default queue: capacityBytes 1 MiB, spinMs 0.05. object = ' + JSON.stringify(OBJ) + '.',
    ],
  };

  const rtt = (k) => combineRtt(rt.results.get(k) ?? ow.results.get(k));
  const pyRtt = rtt('py-rtt-Queue');
  const rttRows = [
    ['rtt-sync', 'multiproc Queue: putSync + getSync, default spin (0.05 ms)'],
    ['rtt-sync0', 'multiproc Queue: putSync + getSync, spinMs 0 (parked)'],
    ['rtt-async', 'multiproc Queue: await put + await get, both sides, default spin'],
    ['rtt-async0', 'multiproc Queue: await put + await get, both sides, spinMs 0'],
    ['py-rtt-Queue', `${py} multiprocessing.Queue`],
    ['py-rtt-SimpleQueue', `${py} multiprocessing.SimpleQueue`],
    ['rtt-fork', "child_process.fork() IPC 'advanced'"],
    ['rtt-port', 'worker_threads MessagePort (threads)'],
    ['rtt-c-spin', 'C futex words, spin 50 µs then park (floor)'],
    ['rtt-c-parked', 'C futex words, park at once (floor)'],
  ].map(([k, impl]) => {
    const r = rtt(k);
    return r ? [impl, r.n, fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS), pyRtt ? fmtRatio(pyRtt.p50 / r.p50) : '—'] : [impl, 0, 'skipped', '—', '—', '—'];
  });
  const rttTable = {
    title: 'Round trip over two queues: the parent puts a small int into q1, a child gets it and puts it into q2, the parent gets it (µs; ratio = CPython Queue p50 / this p50)',
    columns: ['implementation', 'n', 'p50 µs', 'p99 µs', 'round trips/s', 'vs CPython Queue'],
    rows: rttRows,
    notes: [
      `${ROUNDS} rounds; each timed with process.hrtime.bigint() (CPython: perf_counter_ns) after at least 500 untimed. p50/p99: medians of the rounds' own; round trips/s over all rounds (C rows: 1e9 / p50).`,
      'fork IPC and MessagePort rows echo messages on the event loop (their only mode).',
    ],
  };

  // 3. goals (../shared/BASELINES.md)
  const smallInt = medOf('ours-sync-int', 'msgS');
  const small64 = medOf('ours-sync-b64', 'msgS');
  const pyInt = pyQ('int');
  const big = medOf('ours-sync-b64k', 'mbS');
  const cBig = medOf('c-b64k', 'mbS');
  const parked = rtt('rtt-sync0');
  const spin = rtt('rtt-sync');
  const goals = [
    smallInt ? { text: `one way, small messages (small int) ≥ 3,000,000/s and ≥ 20x CPython's Queue (${pyInt ? fmtRate(pyInt) : '—'}/s here, 165 k/s in BASELINES.md): ${fmtRate(smallInt)}/s, ${pyInt ? fmtRatio(smallInt / pyInt) : '—'}`, pass: smallInt >= 3e6 && (pyInt ? smallInt / pyInt >= 20 : true) } : { text: 'one way small: not measured', pass: null },
    small64 ? { text: `one way, 64-byte Buffers ≥ 3,000,000/s: ${fmtRate(small64)}/s (C ring floor ${fmtRate(medOf('c-b64', 'msgS'))}/s)`, pass: small64 >= 3e6 } : { text: 'one way 64 B: not measured', pass: null },
    big ? { text: `one way, 64 KiB Buffers ≥ 5 GB/s: ${(big / 1000).toFixed(2)} GB/s (C ring floor ${cBig ? (cBig / 1000).toFixed(1) : '—'} GB/s, CPython ${medOf('py-Queue-b64k', 'mbS') ? (medOf('py-Queue-b64k', 'mbS') / 1000).toFixed(2) : '—'} GB/s)`, pass: big >= 5000 } : { text: 'one way 64 KiB: not measured', pass: null },
    parked ? { text: `round trip, sync, parked ≤ 15 µs p50: ${fmtUs(parked.p50)} µs (C futex floor ${rtt('rtt-c-parked') ? fmtUs(rtt('rtt-c-parked').p50) : '—'} µs)`, pass: parked.p50 <= 15_000 } : { text: 'round trip parked: not measured', pass: null },
    spin ? { text: `round trip, sync, short spin while both sides run < 2 µs p50: ${fmtUs(spin.p50)} µs`, pass: spin.p50 < 2_000 } : { text: 'round trip spinning: not measured', pass: null },
  ];
  return { name, title, tables: [owTable, rttTable], goals, notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
