// Codec round-trip cost (encode + decode, CPU ns per message) next to v8.serialize+deserialize and JSON.
// Usage: node bench/codec.mjs            (uses ../dist/codec.js, i.e. after `npm run build:ts`)
//        npx tsc -p tsconfig.json --outDir /tmp/codec-dist && CODEC_MODULE=/tmp/codec-dist/codec.js node bench/codec.mjs
// (a relative CODEC_MODULE is resolved against this file's directory)
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import v8 from 'node:v8';
import { pathToFileURL } from 'node:url';

const spec = process.env.CODEC_MODULE ?? '../dist/codec.js';
const url = path.isAbsolute(spec) ? pathToFileURL(spec).href : new URL(spec, import.meta.url).href;
const { encode, encodeScratch, decode } = await import(url);

const mixed1k = {
  id: 123456, op: 'update', ok: true, missing: null, ratio: 0.75, neg: -42, big: 3_000_000_000,
  name: 'worker-17', note: 'naïve café — ünïcode', tags: ['alpha', 'beta', 'gamma', 'delta'],
  user: { id: 7, name: 'Ada Lovelace', email: 'ada@example.com', roles: ['admin', 'ops'], active: true },
  points: Array.from({ length: 24 }, (_, i) => ({ x: i, y: i * 0.5 })),
  text: 'lorem ipsum dolor sit amet '.repeat(8),
};

const cases = [
  ['small int', 42],
  ['short string', 'hello world'],
  ['{id,op,args}', { id: 1, op: 'get', args: [1, 2, 3] }],
  [`~1 KB object`, mixed1k],
  ['1000 numbers', Array.from({ length: 1000 }, (_, i) => (i % 2 ? i * 1.5 : i))],
  ['64 KiB Buffer', Buffer.alloc(64 * 1024, 7)],
  ['64 KiB string', 'abcdefghijklmnop'.repeat(4096)],
];

// CPU time, not wall time: the machine may be busy with other work. Each candidate runs in batches of
// ~10 ms, interleaved with the others for the same message, and keeps its best batch.
const cpuNs = () => { const u = process.cpuUsage(); return (u.user + u.system) * 1000; };
function measure(fns, rounds = 9) {
  const sizes = fns.map((fn) => {
    let n = 1;
    for (;;) {
      const t = cpuNs();
      for (let i = 0; i < n; i++) fn();
      if (cpuNs() - t > 10e6) return n;
      n *= 2;
    }
  });
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, k) => {
      const t = cpuNs();
      for (let i = 0; i < sizes[k]; i++) fn();
      best[k] = Math.min(best[k], (cpuNs() - t) / sizes[k]);
    });
  }
  return best;
}

let sink;
const rows = [];
for (const [name, value] of cases) {
  const enc = encodeScratch(value);
  const owned = encode(value);
  if (!isDeepStrictEqual(decode(owned), v8.deserialize(v8.serialize(value)))) throw new Error(`${name}: wrong round trip`);
  const v8bytes = v8.serialize(value);
  const json = JSON.stringify(value);
  const fns = [
    () => { sink = decode(encodeScratch(value)); },
    () => { sink = encodeScratch(value); },
    () => { sink = decode(owned); },
    () => { sink = decode(encode(value)); },
    () => { sink = v8.deserialize(v8.serialize(value)); },
    () => { sink = JSON.parse(JSON.stringify(value)); },
  ];
  if (Buffer.isBuffer(value)) {
    const dst = Buffer.allocUnsafeSlow(value.length);
    fns.push(() => { value.copy(dst); });
  }
  const [scratch, encOnly, dec, ownedRt, v8rt, jsonRt, memcpy] = measure(fns);
  rows.push({
    name, scratch, enc: encOnly, dec, owned: ownedRt, v8: v8rt, json: jsonRt, memcpy,
    bytes: enc.length, v8bytes: v8bytes.length, format: enc[0] === 0xff ? 'v8' : 'compact',
  });
}

const f = (x) => (x < 100 ? x.toFixed(1) : Math.round(x).toString());
const header = ['message', 'fmt', 'bytes (v8)', 'codec rt', 'enc', 'dec', 'owned rt', 'v8 rt', 'JSON rt', 'v8/codec', 'JSON/codec'];
const table = rows.map((r) => [
  r.name, r.format, `${r.bytes} (${r.v8bytes})`, f(r.scratch), f(r.enc), f(r.dec), f(r.owned), f(r.v8), f(r.json),
  `${(r.v8 / r.scratch).toFixed(1)}x`, `${(r.json / r.scratch).toFixed(1)}x`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(`node ${process.version}, ${spec}; CPU ns per message, best of 9 interleaved batches`);
console.log('rt = encode + decode; codec rt = encodeScratch + decode, owned rt = encode + decode');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const t of table) console.log(line(t));
for (const r of rows) if (r.memcpy) console.log(`${r.name}: one memcpy of the payload = ${f(r.memcpy)} ns`);
console.log('(JSON does not round-trip Buffers; its column is for scale only)');
if (sink === Symbol.for('never')) console.log(sink);
