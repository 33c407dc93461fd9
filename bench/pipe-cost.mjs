// Where a Pipe round trip goes: the cost of each call on its path beside the syscall it wraps,
// the round trip against C doing the same syscalls, and how the spin before parking changes it.
// Run alone with `node bench/pipe-cost.mjs`, or through `node bench/run.mjs pipe-cost`.
import { setImmediate as immediate } from 'node:timers/promises';
import v8 from 'node:v8';
import { ROUNDS, combineRtt, ended, fmtRate, fmtUs, inRounds, now, progress, spawnTracked } from './common.mjs';
import { OBJ, RTT_N, cFloor, cFloorBinary, loadLib, oursRtt } from './pipe.mjs';

export const name = 'pipe-cost';
export const title = 'Pipe: where the round trip goes, and the spin before parking';

const B64 = Buffer.alloc(64, 120);
const SPINS = [0, 0.01, 0.02, 0.05, 0.1, 0.2];
const PEER_WORK_US = [0, 25];
const N_CALLS = 200_000;

/** ns per call of `fn`, after a tenth as many untimed calls. */
function perCall(fn, n = N_CALLS) {
  for (let i = 0; i < n / 10; i++) fn();
  const t0 = now();
  for (let i = 0; i < n; i++) fn();
  return Number(now() - t0) / n;
}

/** ns per receive of a message that is already in our read buffer (no syscall for most). */
function perBufferedReceive(Pipe, send, recv, n = N_CALLS) {
  const [a, b] = Pipe();
  const batch = 128; // 128 small frames fit in the socket buffer: no send is queued in user space
  let ns = 0n;
  for (let round = 0; round < (n / batch) * 1.1; round++) {
    for (let i = 0; i < batch; i++) send(a);
    const t0 = now();
    for (let i = 0; i < batch; i++) recv(b);
    if (round >= (n / batch) * 0.1) ns += now() - t0; // the first tenth warms up
  }
  a.close();
  b.close();
  return Number(ns) / (Math.floor(n / batch) * batch);
}

/** ns per send while a C process drains the other end; also how many sends found the kernel full. */
async function perSend(Pipe, send, n = N_CALLS) {
  const bin = cFloorBinary();
  if (!bin.path) return { skipped: bin.why };
  const [a, b] = Pipe();
  const sink = spawnTracked(bin.path, ['drain'], { stdio: ['ignore', 'inherit', 'inherit', b.fileno()] });
  b.close();
  const chunk = 100; // 100 small frames fit in the socket buffer even if the drain sleeps
  let ns = 0n;
  let queued = 0;
  const rounds = Math.ceil(n / chunk);
  for (let r = 0; r < rounds * 1.1; r++) {
    const t0 = now();
    for (let i = 0; i < chunk; i++) send(a);
    const dt = now() - t0;
    if (r >= rounds * 0.1) ns += dt;
    if (a.bufferedAmount > 0) {
      queued++;
      while (a.bufferedAmount > 0) await immediate();
    }
    await immediate(); // let the drain catch up, as the C writer waits for an empty socket
  }
  a.close();
  await ended(sink);
  return { ns: Number(ns) / (rounds * chunk), queuedChunks: queued, chunks: Math.ceil(rounds * 1.1) };
}

const us = (ns) => (ns === undefined || Number.isNaN(ns) ? '—' : (ns / 1e3).toFixed(2));

export async function run() {
  const { Pipe } = await loadLib();
  const notes = [];

  // 1. per call
  progress('per call costs');
  const [idle, idlePeer] = Pipe();
  const c = {};
  c.clock = perCall(() => now());
  c.napi = perCall(() => idle.bufferedAmount);
  const cRead = await cFloor(['eagain', 1_000_000]);
  c.cRead = cRead.ns_per_call;
  c.pollEmpty = perCall(() => idle.pollSync(0));
  idle.close();
  idlePeer.close();
  const cWrite = await cFloor(['write', N_CALLS, 68]);
  c.cWrite = cWrite.ns_per_call;
  const sb = await perSend(Pipe, (a) => a.sendBytes(B64));
  const so = await perSend(Pipe, (a) => a.send(OBJ));
  c.sendBytes = sb.ns;
  c.sendObj = so.ns;
  c.recvBytesBuffered = perBufferedReceive(Pipe, (a) => a.sendBytes(B64), (b) => b.recvBytesSync());
  c.recvObjBuffered = perBufferedReceive(Pipe, (a) => a.send(OBJ), (b) => b.recvSync());
  c.v8 = perCall(() => v8.deserialize(v8.serialize(OBJ)), N_CALLS / 4);
  c.json = perCall(() => JSON.parse(JSON.stringify(OBJ)), N_CALLS / 4);
  for (const [k, r] of [['C read()', cRead], ['C write()', cWrite], ['sendBytes', sb], ['send', so]]) {
    if (r.skipped) notes.push(`${k} skipped: ${r.skipped}`);
  }
  const q = (r) => (r.queuedChunks ? ` (${r.queuedChunks} of ${r.chunks} chunks of 100 sends filled the socket)` : '');
  const perCallTable = {
    title: 'Per call, beside the syscall it wraps (µs per call; one process unless a drain is named)',
    columns: ['call', 'µs', 'of which beyond the syscall'],
    rows: [
      ['process.hrtime.bigint() (the clock in every sample)', us(c.clock), '—'],
      ['conn.bufferedAmount (one trivial N-API call)', us(c.napi), '—'],
      ['C read() of an empty non-blocking socket', us(c.cRead), '—'],
      ['conn.pollSync(0), nothing to read (one read())', us(c.pollEmpty), us(c.pollEmpty - c.cRead)],
      ['C write() 68 B, a C process draining', us(c.cWrite), '—'],
      [`conn.sendBytes(64 B), a C process draining${q(sb)}`, us(c.sendBytes), us(c.sendBytes - c.cWrite)],
      [`conn.send(object), a C process draining${q(so)}`, us(c.sendObj), us(c.sendObj - c.cWrite)],
      ['conn.recvBytesSync(), 64 B already in our read buffer', us(c.recvBytesBuffered), 'no syscall'],
      ['conn.recvSync(), object already in our read buffer', us(c.recvObjBuffered), 'no syscall'],
      ['v8.serialize + v8.deserialize of the object (fork IPC "advanced" pays this)', us(c.v8), '—'],
      ['JSON.stringify + JSON.parse of the object (fork IPC "json" pays this)', us(c.json), '—'],
    ],
    notes: [`object = ${JSON.stringify(OBJ)}; ${N_CALLS} calls after ${N_CALLS / 10} untimed ones (serializers: a quarter as many).`],
  };

  // 2. the round trip against C doing the same syscalls, and 3. the spin sweep: one set of rounds
  const cRt = (mode) => async () => {
    const r = await cFloor([mode, RTT_N, 68]);
    return r.skipped ? r : { [`c-${mode}`]: { n: RTT_N, p50: r.p50_ns, p99: r.p99_ns, perS: r.per_s } };
  };
  const anatomyDef = [
    ['c-block', 'C, blocking read()/write() (1 syscall per receive)', cRt('block')],
    ['c-pollread', 'C, non-blocking read() → poll() → read() (the syscalls of a parked recvSync)', cRt('pollread')],
    ['ours0', 'multiproc sendBytes + recvBytesSync, spinMs 0', { role: 'echo-sync-bytes', bytes: true, spinMs: 0 }],
    ['oursAsync', 'multiproc sendBytes + await recvBytes(), both async', { role: 'echo-async-bytes', bytes: true, mode: 'async' }],
    ['c-spin', 'C, non-blocking, spin on read()', cRt('spin')],
    ['oursSpin', 'multiproc sendBytes + recvBytesSync, default spin', { role: 'echo-sync-bytes', bytes: true }],
  ];
  const cases = anatomyDef.map(([key, label, m]) => ({
    label,
    measure: typeof m === 'function' ? m : async () => ({ [key]: await oursRtt(m) }),
  }));
  for (const work of PEER_WORK_US) {
    for (const spinMs of SPINS) {
      cases.push({
        label: `spin sweep: spinMs ${spinMs}, peer works ${work} µs`,
        measure: async () => ({
          [`sweep-${work}-${spinMs}`]: await oursRtt(work
            ? { role: 'echo-work-bytes', bytes: true, spinMs, peerArgs: [String(work)] }
            : { role: 'echo-sync-bytes', bytes: true, spinMs }),
        }),
      });
    }
  }
  const { results, skipped } = await inRounds(cases);
  for (const [label, why] of skipped) notes.push(`${label} skipped: ${why}`);
  const got = (key) => combineRtt(results.get(key));
  const p50 = (key) => got(key)?.p50;
  const [cBlock, cPoll, ours0, oursAsync, cSpin, oursSpin] = anatomyDef.map(([key]) => p50(key));
  const parts = c.sendBytes - c.cWrite + (c.pollEmpty - c.cRead) + c.recvBytesBuffered;
  const anatomyTable = {
    title: 'Round trip, 64 B, against C making the same syscalls (µs)',
    columns: ['round trip', 'p50 µs', 'p99 µs', 'RT/s'],
    rows: anatomyDef.map(([key, label]) => [key, label, got(key)]).filter(([, , r]) => r)
      .map(([, label, r]) => [label, fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS)]),
    notes: [
      `A non-blocking fd costs ${us(cPoll - cBlock)} µs per round trip over blocking reads (C pollread − C blocking, p50).`,
      `multiproc spinMs 0 − C pollread = ${us(ours0 - cPoll)} µs per round trip, ${us((ours0 - cPoll) / 2)} µs per side: JS, N-API, framing, Buffer allocation.`,
      `The per-call table accounts for ${us(parts)} µs per side: sendBytes beyond write() ${us(c.sendBytes - c.cWrite)}, a receive call beyond read() ${us(c.pollEmpty - c.cRead)}, taking a buffered message ${us(c.recvBytesBuffered)}.`,
      `Async (both sides) − sync spinMs 0 = ${us(oursAsync - ours0)} µs per round trip: the event-loop hop (epoll wake-up, uv_poll callback, promise) on both sides.`,
      `Spinning: multiproc default spin − C spin on read() = ${us(oursSpin - cSpin)} µs per round trip.`,
      `${ROUNDS} rounds, interleaved with the spin sweep below; p50, p99: the median of the rounds' own.`,
    ],
  };
  const sweepTable = {
    title: 'Spin before parking: sendBytes + recvBytesSync round trip, 64 B, spinMs on both ends',
    columns: ['spinMs', 'peer works µs', 'p50 µs', 'p99 µs', 'RT/s', 'parent CPU µs/RT', 'child CPU µs/RT'],
    rows: PEER_WORK_US.flatMap((work) => SPINS.map((spinMs) => {
      const r = got(`sweep-${work}-${spinMs}`);
      return r ? [String(spinMs), String(work), fmtUs(r.p50), fmtUs(r.p99), fmtRate(r.perS), us(r.parentCpuNs), us(r.childCpuNs)] : null;
    })).filter(Boolean),
    notes: [
      `The child echoes at once (peer works 0) or after a busy loop of ${PEER_WORK_US[1]} µs, a peer that computes a little before it answers.`,
      'CPU per round trip: parent from process.cpuUsage(), child from /proc/PID/stat (10 ms ticks). Spinning turns waiting into CPU time; with both ends spinning a round trip holds two cores.',
    ],
  };
  return { name, title, tables: [perCallTable, anatomyTable, sweepTable], goals: [], notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runStandalone } = await import('./run.mjs');
  await runStandalone([name, ...process.argv.slice(2)], [{ name, title, run }]);
}
