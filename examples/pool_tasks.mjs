// The seed's Pool program: five tasks of a few hundred ms on Pool(4). Four start at once; the
// fifth starts when one of them has finished, in the worker that became free.
import { Pool } from 'multiproc';

async function longTimeTask(name) {
  console.log(`Run task ${name} (${process.pid})...`);
  const start = Date.now();
  await new Promise((r) => setTimeout(r, 200 + Math.random() * 300)); // the seed sleeps up to 3 s
  const end = Date.now();
  console.log(`Task ${name} runs ${((end - start) / 1000).toFixed(2)} seconds.`);
}

console.log(`Parent process ${process.pid}.`);
const p = new Pool(4);
for (let i = 0; i < 5; i++) p.applyAsync(longTimeTask, [i]);
console.log('Waiting for all subprocesses done...');
p.close();
await p.join();
console.log('All subprocesses done.');
