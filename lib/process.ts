// Process (API.md, Processes): a child `node` running a target, with Python's lifecycle —
// start, join, exit codes, terminate/kill, daemons that die with their parent — and the
// process-wide views currentProcess(), parentProcess(), activeChildren(), cpuCount().
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { native } from './native.js';
import { Connection, sendPrepared } from './connection.js';
import { encode } from './codec.js';
import { describeTarget, entryUrl, type Target, type TargetDesc } from './target.js';
import { launcher } from './context.js';
import { kWaitable, type Waitable } from './waitable.js';

export type { Target } from './target.js';

export interface ProcessOptions {
  target: Target;
  args?: unknown[];
  name?: string;
  daemon?: boolean;
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Node options of the child (default: this process's `process.execArgv`). */
  execArgv?: string[];
}

/** What currentProcess() and parentProcess() describe. */
export interface ProcessInfo {
  name: string;
  pid: number;
  daemon: boolean;
}

/** The start message a child's bootstrap receives on its control channel. */
export interface StartMessage {
  op: 'start';
  target: TargetDesc;
  args: unknown[];
  name: string;
  daemon: boolean;
  identity: number[];
  parent: { name: string; pid: number };
  entry: string;
}

// This process's place in the tree: Python's _identity, and the counter naming its children.
const self = {
  info: { name: 'MainProcess', pid: process.pid, daemon: false } as ProcessInfo,
  identity: [] as number[],
  counter: 0,
  parent: null as ProcessInfo | null,
};

/** Called by the child bootstrap before the target runs. */
export function adoptIdentity(m: StartMessage): void {
  self.info = { name: m.name, pid: process.pid, daemon: m.daemon };
  self.identity = m.identity;
  self.counter = 0;
  self.parent = { name: m.parent.name, pid: m.parent.pid, daemon: false };
}

const SIGNALS = os.constants.signals as Record<string, number>;
const live = new Set<Process>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // As in Python, daemon children are terminated when their parent exits.
  process.on('exit', () => {
    for (const p of live) if (p.daemon && p.exitCode === null) p.terminate();
  });
}

/** A sentinel: ready for wait() once its process has ended. */
export class Sentinel implements Waitable {
  readonly #p: Process;
  constructor(p: Process) {
    this.#p = p;
  }
  get process(): Process {
    return this.#p;
  }
  [kWaitable]() {
    const p = this.#p;
    return {
      ready: () => p.exitCode !== null,
      watch: (cb: () => void) => p._onExit(cb),
    };
  }
}

/** Python's multiprocessing.Process. */
export class Process {
  readonly #target: Target;
  readonly #desc: TargetDesc;
  readonly #args: unknown[];
  readonly #identity: number[];
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #execArgv: string[] | undefined;
  #name: string;
  #daemon: boolean;
  #child: ChildProcess | null = null;
  #ctrl: Connection | null = null;
  #exitCode: number | null = null;
  #closed = false;
  #exitWaiters: (() => void)[] = [];
  #keepAlive = 0; // exit waiters that keep this process alive
  #sentinel: Sentinel | null = null;

  constructor(options: ProcessOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('Process: expected an options object { target, args?, name?, daemon?, env?, execArgv? }');
    const { target, args = [], name, daemon, env, execArgv } = options;
    this.#identity = [...self.identity, ++self.counter];
    this.#desc = describeTarget(target, `Process(${name ?? `Process-${this.#identity.join(':')}`})`);
    if (!Array.isArray(args)) throw new TypeError(`Process: args must be an array, got ${typeof args}`);
    if (execArgv !== undefined && (!Array.isArray(execArgv) || execArgv.some((a) => typeof a !== 'string'))) throw new TypeError('Process: execArgv must be an array of strings');
    this.#target = target;
    this.#args = args;
    this.#name = name ?? `Process-${this.#identity.join(':')}`;
    this.#daemon = daemon ?? self.info.daemon;
    this.#env = env;
    this.#execArgv = execArgv;
  }

  get name(): string { return this.#name; }
  set name(v: string) { this.#name = String(v); }
  get daemon(): boolean { return this.#daemon; }
  set daemon(v: boolean) {
    if (this.#child) throw new Error(`Process ${this.#name}: daemon cannot be changed once the process has started`);
    this.#daemon = !!v;
  }
  get target(): Target { return this.#target; }
  get pid(): number | undefined { return this.#child?.pid; }
  /** Python's `ident`: the pid. */
  get ident(): number | undefined { return this.pid; }

  /** The exit code once the process has ended: 0, 1 for a throw, n for exit(n), -signal for a signal; else null. */
  get exitCode(): number | null {
    if (this.#exitCode === null && this.#child?.pid !== undefined) {
      const s = native.exitStatus(this.#child.pid, false);
      if (typeof s === 'number') this.#ended(s);
    }
    return this.#exitCode;
  }

  /** Something `wait()` accepts: ready when the process has ended. */
  get sentinel(): Sentinel {
    this.#check('sentinel');
    if (!this.#child) throw new Error(`Process ${this.#name}: the sentinel exists once the process has started; call start() first`);
    return (this.#sentinel ??= new Sentinel(this));
  }

  start(): void {
    this.#check('start');
    if (this.#child) throw new Error(`Process ${this.#name}: cannot start a process twice`);
    const parent = self.info;
    const message: StartMessage = {
      op: 'start', target: this.#desc, args: this.#args, name: this.#name, daemon: this.#daemon,
      identity: this.#identity, parent: { name: parent.name, pid: parent.pid }, entry: entryUrl(),
    };
    // Encoded before any process exists: an uncloneable argument fails here, naming it.
    const fds: number[] = [];
    const bytes = encodeStart(message, this.#name, fds);
    const { child, ctrl } = launcher().launch({ env: this.#env, execArgv: this.#execArgv, daemon: this.#daemon });
    this.#child = child;
    this.#ctrl = ctrl;
    installExitHook();
    live.add(this);
    child.once('exit', (code, signal) => {
      this.#ended(code ?? -(SIGNALS[signal ?? ''] ?? 0));
    });
    try {
      sendPrepared(ctrl, bytes, fds);
    } catch (e) {
      child.kill('SIGKILL');
      throw new Error(`Process ${this.#name}: could not hand the target to the child: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Resolves when the process has ended, or after `timeoutMs` (then check `exitCode`). */
  join(timeoutMs?: number | null): Promise<void> {
    try {
      this.#check('join');
      if (!this.#child) throw new Error(`Process ${this.#name}: can only join a started process`);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const cancel = this._onExit(() => {
        clearTimeout(timer);
        resolve();
      });
      if (timeoutMs !== undefined && timeoutMs !== null && timeoutMs !== Infinity) {
        timer = setTimeout(() => {
          cancel();
          resolve();
        }, Math.max(0, timeoutMs));
      }
    });
  }

  /** Blocks the thread until the process has ended, or for `timeoutMs` at most. */
  joinSync(timeoutMs?: number | null): void {
    this.#check('joinSync');
    if (!this.#child) throw new Error(`Process ${this.#name}: can only join a started process`);
    if (this.exitCode !== null) return;
    const deadline = timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity ? Infinity : Date.now() + Math.max(0, timeoutMs);
    // The control socket reaches EOF when the child's fds close, that is when it exits.
    const ctrl = this.#ctrl!;
    for (;;) {
      const left = deadline === Infinity ? null : Math.max(0, deadline - Date.now());
      if (!ctrl.closed && !ctrl.pollSync(left)) return; // timed out
      if (!ctrl.closed) {
        try {
          ctrl.recvBytesSync(); // a stray message, not EOF: keep waiting
          continue;
        } catch {
          // EOF: the child is gone or going
        }
      }
      const s = native.exitStatus(this.#child.pid!, true);
      if (typeof s === 'number') this.#ended(s);
      if (this.#exitCode !== null || deadline <= Date.now()) return;
      if (ctrl.closed) return;
    }
  }

  isAlive(): boolean {
    this.#check('isAlive');
    return this.#child !== null && this.exitCode === null;
  }

  /** SIGTERM (Python's terminate). */
  terminate(): void {
    this.#signal('terminate', 'SIGTERM');
  }

  /** SIGKILL. */
  kill(): void {
    this.#signal('kill', 'SIGKILL');
  }

  /** Releases the process's resources; it must have ended. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#child && this.exitCode === null) {
      throw new Error(`Process ${this.#name}: cannot close a process that is still running; join() or terminate() it first`);
    }
    this.#closed = true;
    this.#ctrl?.close();
    live.delete(this);
  }

  toString(): string {
    const state = !this.#child ? 'initial' : this.#exitCode === null ? 'started' : `stopped exitcode=${this.#exitCode}`;
    return `<Process name='${this.#name}' ${state}${this.#daemon ? ' daemon' : ''}>`;
  }

  /**
   * @internal Calls `cb` once the process has ended; returns a canceller. `keepAlive: false`
   * watches without keeping this process alive (a Pool's idle workers).
   */
  _onExit(cb: () => void, keepAlive = true): () => void {
    if (this.#exitCode !== null) {
      queueMicrotask(cb);
      return () => {};
    }
    this.#exitWaiters.push(cb);
    // Someone waits for it: even a daemon (unref'd) child now keeps this process alive.
    if (keepAlive && this.#keepAlive++ === 0) this.#child?.ref();
    let cancelled = false;
    return () => {
      if (cancelled) return;
      cancelled = true;
      const i = this.#exitWaiters.indexOf(cb);
      if (i >= 0) this.#exitWaiters.splice(i, 1);
      if (keepAlive && --this.#keepAlive === 0 && this.#daemon) this.#child?.unref();
    };
  }

  #ended(code: number): void {
    if (this.#exitCode !== null) return;
    this.#exitCode = code;
    live.delete(this);
    this.#ctrl?.close();
    for (const cb of this.#exitWaiters.splice(0)) cb();
  }

  #signal(method: string, sig: NodeJS.Signals): void {
    this.#check(method);
    if (!this.#child) throw new Error(`Process ${this.#name}: cannot ${method} a process that was not started`);
    // exitCode polls waitid without reaping: while it says "running", the pid is still ours.
    if (this.exitCode !== null) return;
    this.#child.kill(sig);
  }

  #check(method: string): void {
    if (this.#closed) throw new Error(`Process ${this.#name}: ${method}() on a closed Process`);
  }
}

function encodeStart(message: StartMessage, name: string, fds: number[]): Buffer {
  const label = `Process ${name}: cannot start`;
  try {
    return encode(message, label, fds);
  } catch (e) {
    if (e instanceof TypeError && e.message.startsWith(label)) {
      // Name the argument as the caller wrote it, not as a field of our start message.
      throw new TypeError(e.message.replace(/\bmsg\.args\b/g, 'args'), { cause: e });
    }
    throw e;
  }
}

export function currentProcess(): ProcessInfo {
  return self.info;
}

export function parentProcess(): ProcessInfo | null {
  return self.parent;
}

/** The children of this process that are still running. */
export function activeChildren(): Process[] {
  return [...live].filter((p) => p.exitCode === null);
}

/** The CPUs this process may run on. */
export function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}
