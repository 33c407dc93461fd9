// Pipe(): round-trip latency and one-way throughput between two processes, ours beside
// child_process.fork() IPC ('json', 'advanced'), CPython's multiprocessing.Pipe and the C floor.
// Run alone with `node bench/pipe.mjs`, or with the others through `node bench/run.mjs`.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import {
  runPythonPeer,
  LIB_URL, PEERS, ROUNDS, combineRate, combineRtt, compileC, ended, fmtMBs, fmtRate, fmtRatio, fmtUs,
  inRounds, now, percentiles, procCpuNs, spawnTracked, track,
} from './common.mjs';

export const name = 'pipe';
export const title = 'Pipe: round trip and one-way throughput';

export const OBJ = { id: 1, op: 'get', args: [1, 2, 3] };
const B64 = Buffer.alloc(64, 120);
const PAYLOAD_LABEL = { obj: 'object', b64: '64 B', b64k: '64 KiB' };

const PIPE_PEER = join(PEERS, 'pipe_peer.mjs');
const FORK_PEER = join(PEERS, 'fork_peer.mjs');
const PY_PEER = join(PEERS, 'py_pipe.py');

/**
 * Round trips, per round (ROUNDS rounds per case): RTT_WARM untimed, then at most RTT_N timed
 * and at most RTT_BUDGET_MS of them.
 */
export const RTT_N = 7000;
export const RTT_WARM = 1000;
export const RTT_BUDGET_MS = 900;
/** One way, per round: messages counted per payload, after a tenth as many warm-up ones. */
const ONEWAY_N = { obj: 40000, b64: 40000, b64k: 2000 };

let lib;
export async function loadLib() {
  if (lib) return lib;
  try {
    lib = await import(LIB_URL);
  } catch (e) {
    throw new Error(`cannot load the built library (${LIB_URL}): run \`npm run build\` first (${e.message})`);
  }
  return lib;
}

// ---- multiproc ----


/**
 * Round trips with our Connection: a child runs pipe_peer.mjs `role` on the other end.
 * `spinMs` undefined: the library default on both ends. `mode`: 'sync' | 'async' in the parent.
 * Also returns the CPU time both processes spent per round trip.
 */
export async function oursRtt({ role, spinMs, bytes, mode = 'sync', n = RTT_N, warm = RTT_WARM, budgetMs = RTT_BUDGET_MS, peerArgs = [] }) {
  const { Pipe } = await loadLib();
  const [a, b] = Pipe(true, spinMs === undefined ? {} : { spinMs });
  const child = spawnTracked(process.execPath, [PIPE_PEER, role, spinMs === undefined ? 'default' : String(spinMs), ...peerArgs], {
    stdio: ['ignore', 'inherit', 'inherit', b.fileno()],
  });
  b.close(); // the child holds it now: its death must read as EOF here
  const send = bytes ? () => a.sendBytes(B64) : () => a.send(OBJ);
  const samples = new Float64Array(n);
  const budget = BigInt(budgetMs) * 1_000_000n;
  let done = 0;
  let start, cpu0, child0;
  if (mode === 'sync') {
    const recv = bytes ? () => a.recvBytesSync() : () => a.recvSync();
    for (let i = 0; i < warm; i++) { send(); recv(); }
    start = now();
    [cpu0, child0] = [process.cpuUsage(), procCpuNs(child.pid)];
    const deadline = start + budget;
    while (done < n) {
      const t0 = now();
      send();
      recv();
      const t1 = now();
      samples[done++] = Number(t1 - t0);
      if (t1 > deadline) break;
    }
  } else {
    const recv = bytes ? () => a.recvBytes() : () => a.recv();
    for (let i = 0; i < warm; i++) { send(); await recv(); }
    start = now();
    [cpu0, child0] = [process.cpuUsage(), procCpuNs(child.pid)];
    const deadline = start + budget;
    while (done < n) {
      const t0 = now();
      send();
      await recv();
      const t1 = now();
      samples[done++] = Number(t1 - t0);
      if (t1 > deadline) break;
    }
  }
  const elapsed = now() - start;
  const cpu = process.cpuUsage(cpu0);
  const childCpu = procCpuNs(child.pid) - child0;
  a.close();
  const r = await ended(child);
  if (r.code !== 0) throw new Error(`pipe_peer ${role} exited with ${r.code ?? r.signal}`);
  const [p50, p99] = percentiles(samples, done);
  return {
    n: done, p50, p99, perS: done / (Number(elapsed) / 1e9),
    parentCpuNs: ((cpu.user + cpu.system) * 1e3) / done, childCpuNs: childCpu / done,
  };
}

/** One way with our Connection: the child sends warm + total payloads, the parent receives with `recv`. */
async function oursOneway({ payload, recv }) {
  const { Pipe } = await loadLib();
  const total = ONEWAY_N[payload];
  const warm = Math.max(1, Math.round(total / 10));
  const [a, b] = Pipe();
  const child = spawnTracked(process.execPath, [PIPE_PEER, 'send', 'default', payload, String(warm + total)], {
    stdio: ['ignore', 'inherit', 'inherit', b.fileno()],
  });
  b.close();
  a.send('go');
  let t0, t1;
  if (recv === 'sync' || recv === 'into') {
    const buf = Buffer.alloc(65536);
    const take = payload === 'obj' ? () => a.recvSync() : recv === 'into' ? () => a.recvBytesIntoSync(buf) : () => a.recvBytesSync();
    for (let i = 0; i < warm; i++) take();
    t0 = now();
    for (let i = 0; i < total; i++) take();
    t1 = now();
  } else {
    const take = payload === 'obj' ? () => a.recv() : () => a.recvBytes();
    for (let i = 0; i < warm; i++) await take();
    t0 = now();
    for (let i = 0; i < total; i++) await take();
    t1 = now();
  }
  a.close();
  const r = await ended(child);
  if (r.code !== 0) throw new Error(`pipe_peer send exited with ${r.code ?? r.signal}`);
  return oneway(total, t1 - t0, payload);
}

function oneway(total, ns, payload) {
  const s = Number(ns) / 1e9;
  const size = payload === 'b64' ? 64 : payload === 'b64k' ? 65536 : 0;
  return { n: total, msgS: total / s, mbS: size ? (total * size) / s / 1e6 : null };
}

// ---- child_process.fork() IPC ----

function forkPeer(args, serialization) {
  return track(fork(FORK_PEER, args, { serialization, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
}

function exitOf(child) {
  return new Promise((res) => (child.exitCode !== null || child.signalCode !== null ? res() : child.once('exit', res)));
}

/** `count` round trips over fork IPC, each timed into `samples` when given; stops at `deadline` (ns). */
function forkRounds(child, msg, count, samples, deadline) {
  return new Promise((resolve) => {
    let i = 0;
    let t0;
    const onMessage = () => {
      const t1 = now();
      if (samples) samples[i] = Number(t1 - t0);
      i++;
      if (i === count || (deadline !== undefined && t1 > deadline)) {
        child.off('message', onMessage);
        resolve(i);
      } else {
        t0 = now();
        child.send(msg);
      }
    };
    child.on('message', onMessage);
    t0 = now();
    child.send(msg);
  });
}

/** Round trips over fork IPC (also for bench/queue.mjs): payload 'obj', 'b64' or 'int' (a small int). */
export async function forkRtt(serialization, payload, n = RTT_N) {
  const child = forkPeer(['echo'], serialization);
  const exited = exitOf(child);
  const msg = payload === 'obj' ? OBJ : payload === 'int' ? 1 : B64;
  await forkRounds(child, msg, RTT_WARM);
  const samples = new Float64Array(n);
  const start = now();
  const done = await forkRounds(child, msg, n, samples, start + BigInt(RTT_BUDGET_MS) * 1_000_000n);
  const elapsed = now() - start;
  child.disconnect();
  await exited;
  const [p50, p99] = percentiles(samples, done);
  return { n: done, p50, p99, perS: done / (Number(elapsed) / 1e9) };
}

/** One way over fork IPC, child → parent (also for bench/queue.mjs): payload 'int', 'obj', 'b64' or 'b64k'. */
export async function forkOneway(serialization, payload, total = ONEWAY_N[payload]) {
  const warm = Math.max(1, Math.round(total / 10));
  const child = forkPeer(['send', payload, String(warm + total)], serialization);
  const exited = exitOf(child);
  const ns = await new Promise((resolve) => {
    let i = 0;
    let t0;
    child.on('message', () => {
      i++;
      if (i === warm) t0 = now();
      else if (i === warm + total) resolve(now() - t0);
    });
    child.send('go');
  });
  child.disconnect();
  await exited;
  return oneway(total, ns, payload);
}

// ---- CPython and C ----

/** Runs py_pipe.py with `cfg`; its JSON, or { skipped: why }. */
export const python = (cfg) => runPythonPeer(PY_PEER, cfg);

/** The C floor over a socketpair (bench/peers/rtt_floor.c, compiled into a temp dir). */
let cBin;
export function cFloorBinary() {
  cBin ??= compileC('rtt_floor.c');
  return cBin;
}

export async function cFloor(args) {
  const bin = cFloorBinary();
  if (!bin.path) return { skipped: bin.why };
  const child = spawnTracked(bin.path, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await ended(child, 60_000);
  if (r.code !== 0) return { skipped: `rtt_floor ${args.join(' ')} failed (${r.signal === 'SIGKILL' ? 'killed after 60 s' : r.code ?? r.signal}) ${r.stderr.trim()}`.trim() };
  return JSON.parse(r.stdout);
}

// ---- the bench ----

const ratio = (peer, ours) => (peer && ours ? peer / ours : null);
const pyRtt = (r) => ({ n: r.n, p50: r.p50_ns, p99: r.p99_ns, perS: r.per_s });

export async function run() {
  await loadLib();
  const notes = [];
  const skippedNotes = (skipped) => {
    for (const [label, why] of skipped) notes.push(`${label} skipped: ${why}`);
  };

  // 1. round trips. Rows: [key, implementation, payload, reference ('fork' | 'py' | undefined)]
  const rttRowsDef = [];
  const rttCases = [];
  const ours = (key, impl, payload, opts) => {
    rttRowsDef.push([key, impl, payload]);
    rttCases.push({ label: `round trip: ${impl}`, measure: async () => ({ [key]: await oursRtt(opts) }) });
  };
  ours('sync', 'multiproc send + recvSync', 'obj', { role: 'echo-sync' });
  ours('sync0', 'multiproc send + recvSync, spinMs 0', 'obj', { role: 'echo-sync', spinMs: 0 });
  ours('async1', 'multiproc await recv() (child recvSync)', 'obj', { role: 'echo-sync', mode: 'async' });
  ours('async', 'multiproc await recv(), both async', 'obj', { role: 'echo-async', mode: 'async' });
  ours('bsync', 'multiproc sendBytes + recvBytesSync', 'b64', { role: 'echo-sync-bytes', bytes: true });
  ours('bsync0', 'multiproc sendBytes + recvBytesSync, spinMs 0', 'b64', { role: 'echo-sync-bytes', bytes: true, spinMs: 0 });
  ours('basync', 'multiproc await recvBytes(), both async', 'b64', { role: 'echo-async-bytes', bytes: true, mode: 'async' });
  for (const [ser, payload] of [['json', 'obj'], ['advanced', 'obj'], ['advanced', 'b64']]) {
    const key = `fork-${ser}-${payload}`;
    rttRowsDef.push([key, `fork IPC '${ser}'`, payload, ser === 'advanced' ? 'fork' : undefined]);
    rttCases.push({ label: `round trip: fork IPC '${ser}' ${PAYLOAD_LABEL[payload]}`, measure: async () => ({ [key]: await forkRtt(ser, payload) }) });
  }
  let pyVersion = '';
  rttRowsDef.push(['py-obj', 'CPython Pipe send + recv', 'obj', 'py'], ['py-b64', 'CPython Pipe send_bytes + recv_bytes', 'b64', 'py']);
  rttCases.push({
    label: 'round trip: CPython Pipe',
    measure: async () => {
      const r = await python({ rtt_n: RTT_N, rtt_warm: RTT_WARM, budget_s: RTT_BUDGET_MS / 1000, rtt_payloads: ['obj', 'b64'] });
      if (r.skipped) return r;
      pyVersion = r.python;
      return { 'py-obj': pyRtt(r.rtt.obj), 'py-b64': pyRtt(r.rtt.b64) };
    },
  });
  rttRowsDef.push(['c-block', 'C socketpair, blocking read/write (floor)', 'c68'], ['c-spin', 'C socketpair, spin on read()', 'c68']);
  for (const mode of ['block', 'spin']) {
    rttCases.push({
      label: `round trip: C ${mode}`,
      measure: async () => {
        const c = await cFloor([mode, RTT_N, 68]);
        return c.skipped ? c : { [`c-${mode}`]: { n: RTT_N, p50: c.p50_ns, p99: c.p99_ns, perS: c.per_s } };
      },
    });
  }
  const rttRun = await inRounds(rttCases);
  skippedNotes(rttRun.skipped);
  const rtt = rttRowsDef
    .map(([key, impl, payload, ref]) => ({ key, impl: key.startsWith('py-') ? impl.replace('CPython', `CPython ${pyVersion}`) : impl, payload, ref, r: combineRtt(rttRun.results.get(key)) }))
    .filter((x) => x.r);
  const refOf = (list, which, payload) => list.find((x) => x.ref === which && x.payload === payload)?.r;
  const rttTable = {
    title: 'Round trip, parent sends → child echoes → parent receives (µs; ratio = peer p50 / this p50, >1 is faster than the peer)',
    columns: ['implementation', 'payload', 'p50 µs', 'p99 µs', 'RT/s', 'vs fork advanced', 'vs CPython'],
    rows: rtt.map(({ impl, payload, r }) => {
      const peerCol = (ref) => (payload === 'c68' || !ref ? '—' : fmtRatio(ratio(ref.p50, r.p50)));
      return [impl, payload === 'c68' ? '64 B + 4 B header' : PAYLOAD_LABEL[payload], fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS),
        peerCol(refOf(rtt, 'fork', payload)), peerCol(refOf(rtt, 'py', payload))];
    }),
    notes: [
      `object = ${JSON.stringify(OBJ)}; 64 B = a 64-byte Buffer (fork IPC 'advanced' sends it as a Buffer; CPython as bytes).`,
      `${ROUNDS} rounds, interleaved; in each, a fresh child, ${RTT_WARM} untimed round trips, then up to ${RTT_N} each timed with process.hrtime.bigint() (CPython: perf_counter_ns; C: clock_gettime), at most ${RTT_BUDGET_MS} ms.`,
      'p50, p99: the median of the rounds\' own; RT/s: all timed round trips over their total time.',
      'multiproc rows use a duplex Pipe() (a socketpair, as CPython\'s Pipe()); spinMs applies to both ends; no spinMs = the library default.',
      'The C rows are the kernel floor on the same socketpair with the same frame size (bench/peers/rtt_floor.c).',
    ],
  };

  // 2. one way
  const owRowsDef = [];
  const owCases = [];
  for (const [impl, payload, recv] of [
    ['multiproc recvSync', 'obj', 'sync'], ['multiproc await recv()', 'obj', 'async'],
    ['multiproc recvBytesSync', 'b64', 'sync'], ['multiproc await recvBytes()', 'b64', 'async'],
    ['multiproc recvBytesSync', 'b64k', 'sync'], ['multiproc recvBytesIntoSync (one reused buffer)', 'b64k', 'into'],
    ['multiproc await recvBytes()', 'b64k', 'async'],
  ]) {
    const key = `ours-${payload}-${recv}`;
    owRowsDef.push([key, impl, payload]);
    owCases.push({ label: `one way: ${impl} ${PAYLOAD_LABEL[payload]}`, measure: async () => ({ [key]: await oursOneway({ payload, recv }) }) });
  }
  for (const [ser, payload] of [['json', 'obj'], ['advanced', 'obj'], ['advanced', 'b64'], ['advanced', 'b64k']]) {
    const key = `fork-${ser}-${payload}`;
    owRowsDef.push([key, `fork IPC '${ser}'`, payload, ser === 'advanced' ? 'fork' : undefined]);
    owCases.push({ label: `one way: fork IPC '${ser}' ${PAYLOAD_LABEL[payload]}`, measure: async () => ({ [key]: await forkOneway(ser, payload) }) });
  }
  for (const payload of Object.keys(ONEWAY_N)) owRowsDef.push([`py-${payload}`, `CPython Pipe ${payload === 'obj' ? 'recv' : 'recv_bytes'}`, payload, 'py']);
  owCases.push({
    label: 'one way: CPython Pipe',
    measure: async () => {
      const r = await python({ rtt_payloads: [], tput: ONEWAY_N });
      if (r.skipped) return r;
      pyVersion = r.python;
      return Object.fromEntries(Object.entries(r.oneway).map(([k, v]) => [`py-${k}`, { n: v.n, msgS: v.msg_s, mbS: v.mb_s }]));
    },
  });
  const owRun = await inRounds(owCases);
  skippedNotes(owRun.skipped);
  const order = Object.keys(ONEWAY_N);
  const ow = owRowsDef
    .map(([key, impl, payload, ref]) => ({ key, impl: key.startsWith('py-') ? impl.replace('CPython', `CPython ${pyVersion}`) : impl, payload, ref, r: combineRate(owRun.results.get(key)) }))
    .filter((x) => x.r)
    .sort((x, y) => order.indexOf(x.payload) - order.indexOf(y.payload));
  const owTable = {
    title: 'One way, child sends → parent receives (ratio = this rate / peer rate, >1 is faster)',
    columns: ['implementation (parent receives with)', 'payload', 'msg/s', 'MB/s', 'vs fork advanced', 'vs CPython'],
    rows: ow.map(({ impl, payload, r }) => [impl, PAYLOAD_LABEL[payload], fmtRate(r.msgS), fmtMBs(r.mbS),
      fmtRatio(ratio(r.msgS, refOf(ow, 'fork', payload)?.msgS)), fmtRatio(ratio(r.msgS, refOf(ow, 'py', payload)?.msgS))]),
    notes: [
      `${ROUNDS} rounds, interleaved, each with a fresh child counting ${Object.entries(ONEWAY_N).map(([k, v]) => `${v} × ${PAYLOAD_LABEL[k]}`).join(', ')} after a tenth as many warm-up messages; the clock runs from the last warm-up message received to the last message. Figures: the median round.`,
      'Senders: multiproc send/sendBytes, waiting (setImmediate) for the kernel to take its queue once more than 128 KiB is queued; fork process.send, waiting for its write callback once it returns false (Node\'s own 128 KiB threshold); CPython blocking send/send_bytes.',
    ],
  };

  // 3. goals
  const get = (key) => rtt.find((x) => x.key === key)?.r;
  const fkObj = get('fork-advanced-obj');
  // A goal holds when both the typical round trip (p50) and the mean one (from RT/s, as the
  // project's baselines are stated) are that much faster: a spin that pays off only half the time fails.
  const goal = (what, r, want) => {
    if (!r || !fkObj) return { text: `${what}: not measured`, pass: null };
    const byP50 = fkObj.p50 / r.p50;
    const byMean = r.perS / fkObj.perS;
    return {
      text: `${what}: p50 ${fmtUs(r.p50)} µs vs fork IPC 'advanced' ${fmtUs(fkObj.p50)} µs → ${byP50.toFixed(2)}x; mean ${fmtUs(1e9 / r.perS)} vs ${fmtUs(1e9 / fkObj.perS)} µs → ${byMean.toFixed(2)}x (goal: both ≥ ${want}x)`,
      pass: byP50 >= want && byMean >= want,
    };
  };
  const goals = [
    goal('small-object round trip, recvSync (default spin)', get('sync'), 3),
    goal('small-object round trip, async recv, both async', get('async'), 1.5),
    goal('small-object round trip, async recv, child recvSync', get('async1'), 1.5),
  ];
  return { name, title, tables: [rttTable, owTable], goals, notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
