// The entry module of a ThreadPool's worker threads: adopt the pool's Connection and serve it
// with the same loop as a pool process (lib/pool-worker.ts).
import { workerData } from 'node:worker_threads';
import { native } from './native.js';
import { Connection } from './connection.js';
import { poolWorker } from './pool-worker.js';

// Threads share the process's fd table: the pool passes its end's fd number. This thread takes a
// duplicate of its own (closed by the addon's per-environment cleanup when the thread ends), so
// the pool can close the original whether or not the thread got this far.
const conn = new Connection(native.dupFd((workerData as { fd: number }).fd));
await poolWorker(conn);
