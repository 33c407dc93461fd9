// Starting real child processes for tests: a snippet of ESM run by a fresh `node`, with the
// library's built entry point at hand and chosen fds of ours inherited as its fd 3, 4, ...
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MARKER } from './marker.js';

export const root = resolve(import.meta.dirname, '..', '..');
/** URL of the built library, for `import ... from LIB` inside child snippets. */
export const LIB = pathToFileURL(join(root, 'dist', 'index.js')).href;
const NATIVE = pathToFileURL(join(root, 'dist', 'native.js')).href;

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Child {
  proc: ChildProcess;
  /** Settles when the child has exited, with its output. */
  done: Promise<ChildResult>;
}

const live = new Set<ChildProcess>();
// Inside the package (not under node_modules), so that snippets and the function targets they
// start (whose import() resolves from the entry module) can import 'multiproc' by name and the
// project's dependencies.
const scratch = join(root, '.tmp');
mkdirSync(scratch, { recursive: true });
const dir = mkdtempSync(join(scratch, 'test-'));
let seq = 0;
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `source` (an ES module; `from LIB` in it imports the built library) in a new node
 * process. `fds[i]` becomes the child's fd 3 + i. Output is collected, not printed.
 */
export function runNode(source: string, options: { fds?: number[]; env?: NodeJS.ProcessEnv; args?: string[]; execArgv?: string[] } = {}): Child {
  const file = join(dir, `child-${process.pid}-${++seq}.mjs`);
  // The snippet dies with the test worker, also when a timed-out test's worker is killed.
  const prologue = `import { native as __native } from ${JSON.stringify(NATIVE)}; __native.setParentDeathSignal(9, ${process.pid});\n`;
  writeFileSync(file, prologue + source.replace(/\bfrom LIB\b/g, `from ${JSON.stringify(LIB)}`));
  const proc = spawn(process.execPath, [...(options.execArgv ?? []), file, MARKER, ...(options.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe', ...(options.fds ?? [])],
    env: { ...process.env, ...options.env },
  });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  proc.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise<ChildResult>((res) => {
    proc.on('close', (code, signal) => {
      live.delete(proc);
      res({ code, signal, stdout, stderr });
    });
  });
  return { proc, done };
}

/** Runs a snippet to completion and fails with its stderr if it did not exit 0. */
export async function runNodeOk(source: string, options: Parameters<typeof runNode>[1] = {}): Promise<string> {
  const r = await runNode(source, options).done;
  if (r.code !== 0) throw new Error(`child exited with ${r.code ?? r.signal}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** fds open in this process right now (via /proc), to check that nothing leaks. */
export function openFds(): number[] {
  return readdirSync('/proc/self/fd').map(Number);
}
