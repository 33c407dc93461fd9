// Start methods as strategies (CPython's context.py + popen_*.py): how a Process gets its
// child `node`. `spawn` starts a fresh one per Process; `forkserver` keeps warm, idle ones
// with the library loaded and hands the next start() to one of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Connection, Pipe } from './connection.js';

export type StartMethod = 'spawn' | 'forkserver';

export interface LaunchOptions {
  env?: NodeJS.ProcessEnv;
  execArgv?: string[];
  daemon: boolean;
}

export interface Launched {
  child: ChildProcess;
  /** Our end of the control socket, the child's fd 3. */
  ctrl: Connection;
}

export interface Launcher {
  launch(options: LaunchOptions): Launched;
  /** Ends idle processes the method keeps. */
  shutdown(): void;
}

// The child's entry point, beside this module; when this module runs from its TypeScript source
// (the test suite), the built one in dist/.
const here = fileURLToPath(import.meta.url);
export const BOOTSTRAP = here.endsWith('.ts') ? join(dirname(here), '..', 'dist', 'bootstrap.js') : join(dirname(here), 'bootstrap.js');
export const CHILD_FLAG = '--multiproc-child';

// Options of ours that must not reach a child: a script to evaluate instead of the bootstrap,
// or a debugger port the parent holds already.
const DROP_WITH_VALUE = new Set(['-e', '--eval', '-p', '--print', '--inspect-port', '--debug-port']);
function childExecArgv(): string[] {
  const out: string[] = [];
  const a = process.execArgv;
  for (let i = 0; i < a.length; i++) {
    const opt = a[i]!;
    if (DROP_WITH_VALUE.has(opt)) { i++; continue; }
    if (/^(--eval|--print|--input-type|--inspect|--debug|--test|--watch)/.test(opt) || opt === '-i' || opt === '--interactive') continue;
    out.push(opt);
  }
  return out;
}

function spawnChild(execArgv: string[] | undefined, env: NodeJS.ProcessEnv | undefined, extra: string[] = []): Launched {
  const [ours, theirs] = Pipe();
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...(execArgv ?? childExecArgv()), BOOTSTRAP, CHILD_FLAG, String(process.pid), ...extra], {
      // As in Python, the child reads nothing from our stdin and writes to our stdout/stderr.
      stdio: ['ignore', 'inherit', 'inherit', theirs.fileno()],
      env: env ?? process.env,
    });
  } finally {
    theirs.close();
  }
  if (child.pid === undefined) {
    ours.close();
    throw new Error(`Process: could not start ${process.execPath}`);
  }
  return { child, ctrl: ours };
}

class SpawnLauncher implements Launcher {
  launch(o: LaunchOptions): Launched {
    const l = spawnChild(o.execArgv, o.env);
    if (o.daemon) l.child.unref();
    return l;
  }
  shutdown(): void {}
}

const REFILL_DELAY_MS = 50;

/** How many warm processes the forkserver keeps (MULTIPROC_FORKSERVER_WARM, default 2). */
function warmTarget(): number {
  const n = Number(process.env.MULTIPROC_FORKSERVER_WARM ?? 2);
  return Number.isInteger(n) && n >= 0 ? n : 2;
}

interface Warm extends Launched {
  /** The process said it is loaded and waiting (its first message on the control socket). */
  ready: boolean;
}

class ForkserverLauncher implements Launcher {
  readonly #idle: Warm[] = [];
  #stopped = false;
  #refillTimer: NodeJS.Timeout | undefined;

  constructor() {
    this.#refill();
    installExitHook();
  }

  launch(o: LaunchOptions): Launched {
    // A warm process was started with our env and options; other ones need a fresh spawn.
    if (o.env !== undefined || o.execArgv !== undefined) return new SpawnLauncher().launch(o);
    this.#stopped = false;
    const l = this.#take() ?? spawnChild(undefined, undefined, ['--multiproc-warm']);
    if (!o.daemon) l.child.ref();
    // The replacement starts a little later: spawning it costs this process milliseconds, and
    // booting it takes a CPU, both of which the target just handed over should have first.
    this.#refillTimer ??= setTimeout(() => {
      this.#refillTimer = undefined;
      this.#refill();
    }, REFILL_DELAY_MS).unref();
    return l;
  }

  /** A warm process that is alive, preferring one that is ready, then the oldest. */
  #take(): Launched | undefined {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const l = this.#idle[i]!;
      if (l.child.exitCode !== null || l.child.signalCode !== null || l.ctrl.closed) {
        this.#idle.splice(i, 1);
        l.ctrl.close();
      } else if (!l.ready && l.ctrl.pollSync(0)) {
        l.ctrl.recvSync(); // its "ready"
        l.ready = true;
      }
    }
    const i = Math.max(0, this.#idle.findIndex((l) => l.ready));
    return this.#idle.splice(i, 1)[0];
  }

  #refill(): void {
    while (!this.#stopped && this.#idle.length < warmTarget()) {
      const l: Warm = { ...spawnChild(undefined, undefined, ['--multiproc-warm']), ready: false };
      // Idle, it must not keep this process alive; it dies with us (SIGKILL on exit, EOF, PDEATHSIG).
      l.child.unref();
      l.child.once('exit', () => {
        const i = this.#idle.indexOf(l);
        if (i >= 0) {
          this.#idle.splice(i, 1);
          l.ctrl.close();
        }
      });
      this.#idle.push(l);
    }
  }

  shutdown(): void {
    this.#stopped = true;
    clearTimeout(this.#refillTimer);
    this.#refillTimer = undefined;
    for (const l of this.#idle.splice(0)) {
      l.child.kill('SIGKILL');
      l.ctrl.close();
    }
  }
}

let method: StartMethod | null = null;
let current: Launcher | null = null;
let exitHookInstalled = false;

// One hook for whichever launcher is current when the process exits (a launcher replaced by
// setStartMethod was shut down then): one listener, however often the start method changes.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => current?.shutdown());
}

/** Python's set_start_method: once set it can only be changed with `force: true`. */
export function setStartMethod(m: StartMethod, options: { force?: boolean } = {}): void {
  if (m !== 'spawn' && m !== 'forkserver') throw new TypeError(`setStartMethod: unknown start method '${String(m)}'; use 'spawn' or 'forkserver'`);
  if (method !== null && !options.force) {
    throw new Error(`setStartMethod: the start method is already set to '${method}'; pass { force: true } to change it`);
  }
  if (method === m && current) return;
  current?.shutdown();
  method = m;
  current = m === 'spawn' ? new SpawnLauncher() : new ForkserverLauncher();
}

export function getStartMethod(): StartMethod {
  return method ?? 'spawn';
}

/** The launcher of the current start method. */
export function launcher(): Launcher {
  if (!current) current = getStartMethod() === 'spawn' ? new SpawnLauncher() : new ForkserverLauncher();
  return current;
}
