// The seed's Queue-to-Pool program: a writer task and a reader task on one Pool share a plain
// Queue passed as an argument. Python refuses this ("RuntimeError: Queue objects should only be
// shared between processes through inheritance") and needs a Manager().Queue(); ours just works.
import { Pool, Queue } from 'multiproc';

async function write(q) {
  for (const value of ['A', 'B', 'C']) {
    console.log(`Put ${value} to queue...`);
    await q.put(value);
    await new Promise((r) => setTimeout(r, Math.random() * 300));
  }
}

async function read(q) {
  for (;;) {
    let value;
    try {
      value = await q.get({ timeout: 1000 });
    } catch (e) {
      if (e.name === 'Empty') return; // nothing for a second: the writer is done
      throw e;
    }
    console.log(`Get ${value} from queue.`);
  }
}

const q = new Queue();
const p = new Pool();
const pw = p.applyAsync(write, [q]);
const pr = p.applyAsync(read, [q]);
p.close();
await p.join();
await Promise.all([pw.get(), pr.get()]); // a failure in either task would throw here
q.close();
console.log('All data is written and read');
