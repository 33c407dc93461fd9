// `npm run demo`: runs every example program in turn and shows its output.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const examples = readdirSync(here).filter((f) => f.endsWith('.mjs') && f !== 'run-all.mjs').sort();
let failed = 0;
for (const file of examples) {
  console.log(`\n=== examples/${file}`);
  const r = spawnSync(process.execPath, [join(here, file)], { stdio: 'inherit', timeout: 120_000 });
  if (r.status !== 0) {
    failed++;
    console.log(`!!! examples/${file} exited with ${r.status ?? r.signal}`);
  }
}
console.log(`\n${examples.length - failed} of ${examples.length} examples ran cleanly`);
process.exit(failed ? 1 : 0);
