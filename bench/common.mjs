// Shared by every bench: the clock and percentiles, the machine line, table formatting (text
// and Markdown), and the reaper that ends every child process and removes every temp dir.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(BENCH_DIR, '..');
export const PEERS = join(BENCH_DIR, 'peers');
/** URL of the built library (`npm run build` makes it). */
export const LIB_URL = pathToFileURL(join(ROOT, 'dist', 'index.js')).href;

export const now = () => process.hrtime.bigint();

/** Progress on stderr, so stdout holds only the tables. */
export function progress(msg) {
  process.stderr.write(`  … ${msg}\n`);
}

// ---- statistics ----

/** Nearest-rank percentile of the first `n` samples (ns); the array is sorted in place. */
export function percentiles(samples, n = samples.length, ps = [50, 99]) {
  // A typed array sorts numerically (a plain Array would sort as strings).
  const a = ArrayBuffer.isView(samples) ? samples.subarray(0, n) : Float64Array.from(samples.slice(0, n));
  a.sort();
  return ps.map((p) => a[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]);
}

// ---- the machine line ----

let machineCache;
export function machine() {
  if (machineCache) return machineCache;
  const py = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  const cpus = os.cpus();
  const [l1, l5] = os.loadavg();
  machineCache = {
    nproc: os.availableParallelism?.() ?? cpus.length,
    cpu: (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    python: py.status === 0 ? (py.stdout || py.stderr).trim() : 'no python3',
    load: `${l1.toFixed(2)} ${l5.toFixed(2)}`,
  };
  return machineCache;
}

export function machineLine() {
  const m = machine();
  const native = process.env.MULTIPROC_NATIVE ? ` · addon from MULTIPROC_NATIVE=${process.env.MULTIPROC_NATIVE}` : '';
  return `nproc ${m.nproc} · ${m.cpu} · ${m.kernel} · node ${m.node} · ${m.python} · load avg (1, 5 min) at start ${m.load}${native}`;
}

// ---- formatting ----

export const fmtUs = (ns) => (ns === undefined || ns === null ? '—' : (ns / 1e3).toFixed(ns < 1e5 ? 2 : 1));
export function fmtRate(x) {
  if (x === undefined || x === null || !Number.isFinite(x)) return '—';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}
export const fmtMBs = (x) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x.toFixed(0));
/** `ratio` > 1 means ours is better; '—' when either side is missing. */
export const fmtRatio = (r) => (r === undefined || r === null || !Number.isFinite(r) ? '—' : `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`);

/**
 * A table: { title, columns: [names], align?: ['l','r',...], rows: [[cells]], notes: [lines] }.
 * Text for the terminal, Markdown for BENCHMARKS.md.
 */
export function tableText(t) {
  const cols = t.columns;
  const align = t.align ?? cols.map((_, i) => (i === 0 ? 'l' : 'r'));
  const w = cols.map((c, i) => Math.max(c.length, ...t.rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (align[i] === 'l' ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  const out = [`${t.title}`, line(cols), w.map((n) => '-'.repeat(n)).join('  '), ...t.rows.map(line)];
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join('\n');
}

export function tableMarkdown(t) {
  const align = t.align ?? t.columns.map((_, i) => (i === 0 ? 'l' : 'r'));
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  const out = [
    `### ${t.title}`,
    '',
    `| ${t.columns.map(esc).join(' | ')} |`,
    `|${align.map((a) => (a === 'l' ? ':---' : '---:')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
  if (t.notes?.length) out.push('', ...t.notes.map((n) => `- ${n}`));
  return out.join('\n');
}

/** A goal's verdict: pass true/false, null when not measured, 'info' for a comparison that is no goal. */
export const goalVerdict = (g) => (g.pass === 'info' ? 'INFO' : g.pass === null ? 'SKIP' : g.pass ? 'PASS' : 'FAIL');
export const goalText = (g) => `${goalVerdict(g)}  ${g.text}`;

// ---- lifetime: nothing outlives the bench ----

const children = new Set();
const tempDirs = new Set();

function reap() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  children.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

process.on('exit', reap);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    reap();
    process.exit(128 + (os.constants.signals[sig] ?? 0));
  });
}
process.on('uncaughtException', (e) => {
  process.stderr.write(`bench: ${e?.stack ?? e}\n`);
  reap();
  process.exit(1);
});
process.on('unhandledRejection', (e) => {
  process.stderr.write(`bench: ${e?.stack ?? e}\n`);
  reap();
  process.exit(1);
});

/** Registers a ChildProcess so it is killed when the bench ends, however it ends. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Spawns and tracks; resolves `exited` with { code, signal, stdout, stderr } (stdout/stderr collected when piped). */
export function spawnTracked(cmd, args, opts) {
  const child = track(spawn(cmd, args, opts));
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.exited = new Promise((res) => {
    child.once('close', (code, signal) => res({ code, signal, stdout, stderr }));
    child.once('error', (e) => res({ code: null, signal: null, stdout, stderr: `${stderr}${e.message}` }));
  });
  return child;
}

/** Waits for a child to exit, killing it after `ms`. */
export async function ended(child, ms = 5000) {
  let timer;
  const killer = new Promise((res) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      res();
    }, ms);
  });
  const r = await Promise.race([child.exited, killer.then(() => child.exited)]);
  clearTimeout(timer);
  return r;
}

const TEMP_PREFIX = 'multiproc-bench-';

/** Removes the temp dirs of benches that were killed (SIGKILL leaves them): their pid is in the name. */
function sweepStaleTempDirs() {
  for (const e of readdirSync(os.tmpdir())) {
    const pid = Number(e.slice(TEMP_PREFIX.length).split('-')[0]);
    if (!e.startsWith(TEMP_PREFIX) || !Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if (err.code === 'ESRCH') rmSync(join(os.tmpdir(), e), { recursive: true, force: true });
    }
  }
}

/** A temp dir removed when the bench ends (or by the next bench, if this one is killed). */
export function tempDir() {
  if (tempDirs.size === 0) sweepStaleTempDirs();
  const d = mkdtempSync(join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(d) {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

/** Compiles a C file from bench/peers into a temp dir; the path of the binary, or null (with why) when no compiler works. */
export function compileC(name, extra = []) {
  const dir = tempDir();
  const out = join(dir, name.replace(/\.c$/, ''));
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const r = spawnSync(cc, ['-O2', '-o', out, join(PEERS, name), ...extra], { encoding: 'utf8' });
    if (r.status === 0) return { path: out };
    if (r.error?.code !== 'ENOENT') return { path: null, why: `${cc} failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}` };
  }
  return { path: null, why: 'no C compiler (cc, gcc, clang) found' };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- rounds: every case measured ROUNDS times, interleaved, so a burst of load elsewhere on a
// shared machine lands on one round of several cases rather than on all of one case ----

export const ROUNDS = 3;

export function median(xs) {
  const a = xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((x, y) => x - y);
  if (!a.length) return null;
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
}

/**
 * Runs `cases` (each { label, measure(round) → { key: result, ... } | { skipped: why } }) round
 * after round, in the same order each round. Returns a Map key → [result per round] and the
 * reasons of skipped cases.
 */
export async function inRounds(cases, rounds = ROUNDS) {
  const results = new Map();
  const skipped = new Map();
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      if (skipped.has(c.label)) continue;
      progress(`round ${r + 1}/${rounds}: ${c.label}`);
      const out = await c.measure(r);
      if (out.skipped) {
        skipped.set(c.label, out.skipped);
        continue;
      }
      for (const [k, v] of Object.entries(out)) {
        if (!results.has(k)) results.set(k, []);
        results.get(k).push(v);
      }
    }
  }
  return { results, skipped };
}

/** Round trips over rounds: p50 and p99 are the medians of the rounds' own; RT/s is all round trips over all their time. */
export function combineRtt(list) {
  if (!list?.length) return undefined;
  const n = list.reduce((s, x) => s + x.n, 0);
  const secs = list.reduce((s, x) => s + x.n / x.perS, 0);
  const out = { n, p50: median(list.map((x) => x.p50)), p99: median(list.map((x) => x.p99)), perS: n / secs };
  for (const k of Object.keys(list[0])) if (!(k in out)) out[k] = median(list.map((x) => x[k]));
  return out;
}

/** One-way rates over rounds: the median round. */
export function combineRate(list) {
  if (!list?.length) return undefined;
  return { n: list.reduce((s, x) => s + x.n, 0), msgS: median(list.map((x) => x.msgS)), mbS: median(list.map((x) => x.mbS)) };
}

// ---- how busy the rest of the machine was ----

function cpuTicks() {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + (cpu[4] ?? 0); // idle + iowait
  const total = cpu.slice(0, 8).reduce((s, x) => s + x, 0); // user..steal
  const self = readFileSync('/proc/self/stat', 'utf8');
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
  return { busy: total - idle, total, ours: f[11] + f[12] + f[13] + f[14] }; // utime stime cutime cstime
}

/** Starts a measure of the CPU that processes other than this bench (and its children) used. */
export function othersLoad() {
  let a;
  try {
    a = cpuTicks();
  } catch {
    return () => null; // no /proc
  }
  return () => {
    const b = cpuTicks();
    const cpus = os.cpus().length;
    const span = (b.total - a.total) / cpus; // ticks of wall time
    if (span <= 0) return null;
    return Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / span); // CPUs busy on average
  };
}

/** Runs a python3 peer script with `cfg` (JSON in argv); its last stdout line as JSON, or { skipped: why }. */
export async function runPythonPeer(script, cfg) {
  const child = spawnTracked('python3', [script, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await ended(child, 120_000);
  if (r.code !== 0) {
    const why = /ENOENT/.test(r.stderr) ? 'python3 not found' : `python3 failed (${r.code ?? r.signal}): ${r.stderr.trim().split('\n').pop()}`;
    return { skipped: why };
  }
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** utime + stime of a live process in ns (from /proc; fields 14 and 15, clock ticks of 10 ms), or `gone` if it has ended. */
export function procCpuNs(pid, gone = NaN) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 1e7;
  } catch {
    return gone;
  }
}
