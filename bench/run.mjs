// Runs the benches and prints their tables; with --write, puts them into BENCHMARKS.md.
//   node bench/run.mjs [NAME...] [--write]      (npm run bench -- [NAME...] [--write])
// NAME filters by bench name (see BENCHES); none runs them all. Every figure printed or written
// comes from this run; --write replaces the sections of the benches that ran and keeps the others.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ROOT, goalText, goalVerdict, machineLine, othersLoad, tableMarkdown, tableText } from './common.mjs';

/** Every bench, in run order: a module exporting `name`, `title` and `run()` → { tables, goals, notes }. */
export const BENCHES = [
  { name: 'pipe', module: './pipe.mjs' },
  { name: 'pipe-cost', module: './pipe-cost.mjs' },
  { name: 'process', module: './process.mjs' },
  { name: 'lock', module: './lock.mjs' },
  { name: 'manager', module: './manager.mjs' },
  { name: 'queue', module: './queue.mjs' },
  { name: 'pool', module: './pool.mjs' },
];

const OUT = join(ROOT, 'BENCHMARKS.md');

function commandLine(args) {
  const rest = args.join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${rest ? ` -- ${rest}` : ''}`;
  return `node bench/run.mjs${rest ? ` ${rest}` : ''}`;
}

function printResult(res) {
  console.log(`\n== ${res.title} ==`);
  for (const t of res.tables) console.log(`\n${tableText(t)}`);
  if (res.goals?.length) {
    console.log('\nGoals');
    for (const g of res.goals) console.log(`  ${goalText(g)}`);
  }
  for (const n of res.notes ?? []) console.log(`note: ${n}`);
}

function sectionMarkdown(res, command, date, machine) {
  const out = [`<!-- bench:${res.name}:start -->`, `## ${res.title}`, '', `Command: \`${command}\` · ${date}  `, `Machine: ${machine}`];
  for (const t of res.tables) out.push('', tableMarkdown(t));
  if (res.goals?.length) {
    out.push('', '### Goals', '');
    for (const g of res.goals) out.push(`- **${goalVerdict(g)}** ${g.text}`);
  }
  if (res.notes?.length) out.push('', ...res.notes.map((n) => `Note: ${n}  `));
  out.push(`<!-- bench:${res.name}:end -->`);
  return out.join('\n');
}

const HEADER = `# Benchmarks

Written by \`node bench/run.mjs --write\` (\`npm run bench -- --write\`); do not edit by hand. Each
section says the command, the date and the machine of the run its figures come from. The machines
are shared and noisy: compare the ratios measured in one run, never an absolute figure across runs.
Peers and targets: the project's baselines (C floor, CPython \`multiprocessing\`, Node's own IPC).
`;

function writeMarkdown(results, command, date, machine) {
  const sections = new Map();
  if (existsSync(OUT)) {
    const old = readFileSync(OUT, 'utf8');
    for (const m of old.matchAll(/<!-- bench:([\w-]+):start -->[\s\S]*?<!-- bench:\1:end -->/g)) sections.set(m[1], m[0]);
  }
  for (const r of results) sections.set(r.name, sectionMarkdown(r, command, date, machine));
  const known = BENCHES.map((b) => b.name).filter((n) => sections.has(n));
  const others = [...sections.keys()].filter((n) => !known.includes(n));
  const body = [...known, ...others].map((n) => sections.get(n)).join('\n\n');
  writeFileSync(OUT, `${HEADER}\n${body}\n`);
}

/** Runs the benches named in `argv` (all when none); `loaded`: bench modules already imported (a bench run alone). */
export async function runStandalone(argv, loaded = []) {
  const write = argv.includes('--write');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length) {
    console.error(`bench: unknown bench ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
    process.exit(2);
  }
  const chosen = names.length ? BENCHES.filter((b) => names.includes(b.name)) : BENCHES;
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const machine = machineLine();
  console.log(`machine: ${machine}`);
  console.log(`date: ${date}`);
  const results = [];
  for (const b of chosen) {
    process.stderr.write(`bench ${b.name}\n`);
    const mod = loaded.find((m) => m.name === b.name) ?? (await import(b.module));
    const t0 = Date.now();
    const others = othersLoad();
    const res = await mod.run();
    res.seconds = (Date.now() - t0) / 1000;
    const busy = others();
    if (busy !== null) {
      res.notes = [...(res.notes ?? []), `While it ran (${res.seconds.toFixed(0)} s), other processes kept ${busy.toFixed(2)} of the machine's ${cpus().length} CPUs busy on average: above ~0.2 the figures are disturbed (spinning rows first).`];
    }
    printResult(res);
    console.log(`(${b.name}: ${res.seconds.toFixed(1)} s)`);
    results.push(res);
  }
  if (write) {
    writeMarkdown(results, commandLine(argv), date, machine);
    console.log(`\nwrote ${OUT} (${results.map((r) => r.name).join(', ')})`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runStandalone(process.argv.slice(2));
}
