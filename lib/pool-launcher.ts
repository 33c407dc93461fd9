// How a pool gets its workers — the only part where Pool and ThreadPool differ: a daemon Process
// (so start methods, forkserver warm starts and parent-death apply) or a worker_threads Worker,
// each holding the other end of a duplex Pipe() to the pool and running lib/pool-worker.ts.
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DEFAULT_SPIN_MS, Pipe, type Connection } from './connection.js';
import { PoolLink } from './pool-link.js';
import { Process } from './process.js';
import { getStartMethod } from './context.js';

// Workers run the built modules beside this one; when this module runs from its TypeScript
// source (the test suite), the built ones in dist/.
const here = fileURLToPath(import.meta.url);
const DIST = here.endsWith('.ts') ? join(dirname(here), '..', 'dist') : dirname(here);
const WORKER_TARGET = { module: pathToFileURL(join(DIST, 'pool-worker.js')).href, name: 'poolWorker' };
const THREAD_ENTRY = join(DIST, 'pool-thread.js');

/**
 * How long the pool's end of a worker's connection spins before it parks: 4x a Connection's
 * default (0 on one CPU). With the default, a reply that came just after the spin (a worker that
 * had to be woken, on a busy machine) made the pool park; its own wake-up then delayed its next
 * task past the worker's spin, and both settled into parking on every message (measured: apply
 * round trips of 100 µs instead of 20). The pool turns it off while its busy workers need every
 * CPU (lib/pool.ts). The worker's end keeps the default: a worker that waits for the pool has
 * nothing to do, and its spin must not take a CPU from the pool or from other workers for long.
 */
export const POOL_SPIN_MS = 4 * DEFAULT_SPIN_MS;

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n as number, name]));

/** One worker as the pool sees it. */
export interface PoolWorkerHandle {
  /** The pool's end of the wire to the worker (its rings and Connection). */
  readonly link: PoolLink;
  /** "SpawnPoolWorker-3 (pid 1234)", for messages. */
  readonly label: string;
  /** The exit code once the worker has ended, else null. */
  exitCode(): number | null;
  /** Calls `cb` once the worker has ended; with keepAlive false the watch does not keep this process alive. */
  onExit(cb: (code: number) => void, keepAlive: boolean): () => void;
  /** The worker said it is ready (it holds its end of the Connection). */
  ready(): void;
  /** Python's terminate: SIGTERM, or ending the thread. */
  stop(): void;
  /** SIGKILL, or ending the thread. */
  kill(): void;
  /** Frees what is left once the worker has ended. */
  release(): void;
}

export interface PoolLauncher {
  /** "Pool" or "ThreadPool", for messages. */
  readonly what: string;
  start(): PoolWorkerHandle;
  /** An exit code in words: "exit code 3", "exit code -9 (killed by SIGKILL)". */
  describeExit(code: number): string;
}

class ProcessWorker implements PoolWorkerHandle {
  readonly link: PoolLink;
  readonly #p: Process;

  constructor() {
    const [ours, theirs] = Pipe();
    let link: PoolLink | undefined;
    try {
      link = new PoolLink(ours, false, POOL_SPIN_MS);
      const p = new Process({ target: WORKER_TARGET, args: [theirs], daemon: true });
      // Python's names: SpawnPoolWorker-1, ForkserverPoolWorker-2, ...
      const method = getStartMethod();
      p.name = p.name.replace(/^Process/, `${method[0]!.toUpperCase()}${method.slice(1)}PoolWorker`);
      p.start();
      this.#p = p;
    } catch (e) {
      if (link) link.release();
      else ours.close();
      throw e;
    } finally {
      theirs.close(); // the child has its own copy (sent with the start message)
    }
    this.link = link;
  }

  get label(): string {
    return `${this.#p.name} (pid ${this.#p.pid})`;
  }

  exitCode(): number | null {
    return this.#p.exitCode;
  }

  onExit(cb: (code: number) => void, keepAlive: boolean): () => void {
    return this.#p._onExit(() => cb(this.#p.exitCode!), keepAlive);
  }

  ready(): void {}

  stop(): void {
    if (this.#p.exitCode === null) this.#p.terminate();
  }

  kill(): void {
    if (this.#p.exitCode === null) this.#p.kill();
  }

  release(): void {
    this.link.release();
    this.#p.close();
  }
}

let threadCounter = 0;
const liveThreads = new Set<ThreadWorker>();
let exitHookInstalled = false;

// When this process exits, Node ends its worker threads and waits for them; a thread waiting for
// tasks would never notice. The end of its task stream wakes it (its Connection's EOF would, within
// pool-link's CHECK_MS, should the ring be full).
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const t of liveThreads) {
      t.link.close();
      t.link.conn.close();
    }
  });
}

class ThreadWorker implements PoolWorkerHandle {
  readonly link: PoolLink;
  readonly label: string;
  readonly #w: Worker;
  /** Our copy of the thread's end, held until the thread has its own duplicate (see pool-thread.ts). */
  #theirs: Connection | null;
  #code: number | null = null;
  #waiters: { cb: (code: number) => void; keepAlive: boolean }[] = [];
  #holders = 0;

  constructor() {
    const [ours, theirs] = Pipe();
    let w: Worker;
    let link: PoolLink | undefined;
    try {
      link = new PoolLink(ours, true, POOL_SPIN_MS);
      w = new Worker(THREAD_ENTRY, { workerData: { fd: theirs.fileno() } });
    } catch (e) {
      if (link) link.release();
      else ours.close();
      theirs.close();
      throw e;
    }
    this.#w = w;
    this.link = link;
    this.#theirs = theirs;
    this.label = `ThreadPoolWorker-${++threadCounter} (thread ${w.threadId})`;
    w.unref();
    liveThreads.add(this);
    installExitHook();
    // An uncaught error ends the thread with exit code 1, which is what the pool reports; without
    // a listener it would be thrown in this thread instead.
    w.on('error', () => {});
    w.once('exit', (code) => {
      liveThreads.delete(this);
      this.#code = code;
      this.ready();
      for (const x of this.#waiters.splice(0)) x.cb(code);
      this.#holders = 0;
    });
  }

  exitCode(): number | null {
    return this.#code;
  }

  onExit(cb: (code: number) => void, keepAlive: boolean): () => void {
    if (this.#code !== null) {
      const code = this.#code;
      queueMicrotask(() => cb(code));
      return () => {};
    }
    const entry = { cb, keepAlive };
    this.#waiters.push(entry);
    if (keepAlive && this.#holders++ === 0) this.#w.ref();
    return () => {
      const i = this.#waiters.indexOf(entry);
      if (i < 0) return;
      this.#waiters.splice(i, 1);
      if (keepAlive && --this.#holders === 0) this.#w.unref();
    };
  }

  ready(): void {
    this.#theirs?.close();
    this.#theirs = null;
  }

  stop(): void {
    // A thread waiting for tasks sits in a blocking get, which the end of its task stream ends
    // (or, should the ring be full, its Connection's EOF).
    this.link.close();
    this.link.conn.close();
    if (this.#code === null) void this.#w.terminate();
  }

  kill(): void {
    this.stop();
  }

  release(): void {
    this.link.release();
    this.ready();
  }
}

export const processLauncher: PoolLauncher = {
  what: 'Pool',
  start: () => new ProcessWorker(),
  describeExit(code) {
    if (code < 0) return `exit code ${code} (killed by ${SIGNAL_NAMES.get(-code) ?? `signal ${-code}`})`;
    return `exit code ${code}`;
  },
};

export const threadLauncher: PoolLauncher = {
  what: 'ThreadPool',
  start: () => new ThreadWorker(),
  describeExit: (code) => `exit code ${code}`,
};
