// The piscina peer of bench/pool.mjs (worker threads, min = max = `workers`), measured the way
// bench/pool.mjs measures ours; prints one JSON object on stdout.
//   node piscina_pool.mjs '{"workers": 2, "map_n": 100000, "apply_n": 2000, "apply_warm": 200}'
// Warm-up: 2,000 tasks at once and apply_warm sequential ones. Then apply_n sequential
// `await pool.run(i)`, each timed; and map_n run() calls submitted at once, awaited with
// Promise.all (piscina has no map: this is its chunksize-1 map).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { native } from '../../dist/native.js';

const cfg = JSON.parse(process.argv[2]);
native.setParentDeathSignal(9, process.ppid); // die with the bench
const require = createRequire(import.meta.url);
const { Piscina } = await import('piscina');
const version = require('../../node_modules/piscina/package.json').version; // its exports hide package.json
const pool = new Piscina({ filename: fileURLToPath(new URL('./pool_task.mjs', import.meta.url)), minThreads: cfg.workers, maxThreads: cfg.workers });
const now = () => process.hrtime.bigint();

await Promise.all(Array.from({ length: 2000 }, (_, i) => pool.run(i)));
for (let i = 0; i < cfg.apply_warm; i++) await pool.run(i);
const samples = [];
let t0 = now();
for (let i = 0; i < cfg.apply_n; i++) {
  const t = now();
  await pool.run(i);
  samples.push(Number(now() - t));
}
const applyTotal = Number(now() - t0);
t0 = now();
const r = await Promise.all(Array.from({ length: cfg.map_n }, (_, i) => pool.run(i)));
const mapNs = Number(now() - t0);
if (r[cfg.map_n - 1] !== (cfg.map_n - 1) ** 2) throw new Error('piscina: bad result');
await pool.destroy();
console.log(JSON.stringify({ version, apply: { samples, total_ns: applyTotal }, cs1: { items: cfg.map_n, ns: mapNs } }));
