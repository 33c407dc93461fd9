// The seed's Manager program: a Manager().Queue() and a Manager().Lock() passed to Pool tasks;
// the writer puts 'A', 'B', 'C' under the lock, the reader gets until the queue is empty. Then
// the same tasks on a Pool held by the manager process (manager.Pool), whose proxy travels too.
import { Manager, Pool } from 'multiproc';

async function write(q, lock) {
  await lock.acquire();
  try {
    for (const value of ['A', 'B', 'C']) {
      console.log(`Put ${value} to queue...`);
      await q.put(value);
    }
  } finally {
    await lock.release();
  }
}

async function read(q) {
  while (!(await q.empty())) {
    const value = await q.get({ block: false });
    console.log(`Get ${value} from queue.`);
    await new Promise((r) => setTimeout(r, Math.random() * 100));
  }
}

const manager = await Manager();
try {
  // The parent creates the queue and the lock and passes them to each task.
  const q = await manager.Queue();
  const lock = await manager.Lock();
  const p = new Pool();
  const pw = p.applyAsync(write, [q, lock]);
  await pw.wait(); // the seed sleeps here; we wait for the writer, so the reader never starts on an empty queue
  const pr = p.applyAsync(read, [q]);
  p.close();
  await p.join();
  await Promise.all([pw.get(), pr.get()]); // a failure in either task would throw here
  console.log('All data is written and read');

  // manager.Pool: the workers belong to the manager process; the tasks and data are the same.
  const mp = await manager.Pool(2);
  await mp.apply(write, [q, lock]);
  await mp.apply(read, [q]);
  console.log('squares from the manager pool:', await mp.map((x) => x * x, [1, 2, 3, 4]));
  await mp.close();
  await mp.join();
} finally {
  await manager.shutdown();
}
