// The seed's Queue program: one child process writes to a queue, then another reads from it
// until it is empty. The parent creates the queue and passes it to both.
import { Process, Queue } from 'multiproc';

// Code the writing process runs.
async function write(q) {
  for (const value of ['A', 'B', 'C']) {
    console.log(`Put ${value} to queue...`);
    await q.put(value);
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
  }
}

// Code the reading process runs.
async function read(q) {
  while (!q.empty()) {
    const value = await q.get();
    console.log(`Get ${value} from queue.`);
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
  }
}

// The parent creates the Queue and passes it to each child:
const q = new Queue();
const pw = new Process({ target: write, args: [q] });
const pr = new Process({ target: read, args: [q] });
// Start the writer and wait for it to end:
pw.start();
await pw.join();
// Then the reader, which stops once the queue is empty:
pr.start();
await pr.join();
console.log();
console.log('All data is written and read');
