// Packing the project the way `npm publish` would (prepack included) and installing the tarball
// into throwaway apps, for the packaging tests. Each test file packs once: call packProject() in
// beforeAll and removeScratch() in afterAll.
//
// The pack runs in a snapshot of the work tree (node_modules linked, not copied), so that prepack
// rewriting dist/ and prebuilds/ cannot disturb test files running beside this one.
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { MARKER } from './marker.js';

const execFileP = promisify(execFile);

export const root = resolve(import.meta.dirname, '..', '..');

export interface Packed {
  /** Absolute path of the .tgz. */
  tarball: string;
  /** Entries of the tarball (`package/...`), files only. */
  files: string[];
  /** package/package.json of the tarball, parsed. */
  manifest: Record<string, any>;
  /** Seconds `npm pack` took, prepack included. */
  seconds: number;
}

const scratch: string[] = [];

/** A new temporary directory, removed by removeScratch(). */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `multiproc-${prefix}-`));
  scratch.push(dir);
  return dir;
}

export function removeScratch(): void {
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * The environment for the npm and node processes we start: ours without what would change what
 * they do (npm settings inherited from an `npm test` around us, MULTIPROC_NATIVE, NODE_OPTIONS).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(lifecycle_|package_|config_(ignore_scripts|dry_run|json|global|location|prefix|pack_destination|offline)$)/i.test(k)) continue;
    if (['MULTIPROC_NATIVE', 'NODE_OPTIONS', 'NODE_PATH', 'MULTIPROC_SANITIZE', 'INIT_CWD'].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(cmd, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: 480_000 });
  } catch (e: any) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed with ${e.code ?? e.signal}:\n${e.stderr ?? ''}\n${e.stdout ?? ''}`);
  }
}

let packed: Promise<Packed> | undefined;

/** `npm pack`s (a snapshot of) the project once per test file (module instance) into a scratch directory. */
export function packProject(): Promise<Packed> {
  packed ??= (async () => {
    const src = scratchDir('src');
    for (const entry of readdirSync(root)) {
      if (entry === 'node_modules' || entry === '.git') continue;
      cpSync(join(root, entry), join(src, entry), { recursive: true, preserveTimestamps: true });
    }
    symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'));
    const dest = scratchDir('pack');
    const t0 = performance.now();
    await run('npm', ['pack', '--pack-destination', dest, '--loglevel=warn'], src, cleanEnv());
    const seconds = (performance.now() - t0) / 1000;
    const tgz = readdirSync(dest).filter((f) => f.endsWith('.tgz'));
    if (tgz.length !== 1) throw new Error(`npm pack left ${tgz.length} tarballs in ${dest}: ${tgz.join(', ')}`);
    const tarball = join(dest, tgz[0]!);
    const files = (await run('tar', ['-tzf', tarball], dest, cleanEnv())).stdout.split('\n').filter((l) => l && !l.endsWith('/'));
    const manifest = JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'], dest, cleanEnv())).stdout);
    return { tarball, files, manifest, seconds };
  })();
  return packed;
}

export interface App {
  dir: string;
  /** node_modules/multiproc of the app. */
  pkg: string;
  /** Output of npm install, stdout and stderr. */
  log: string;
}

/**
 * A fresh app ({"type":"module"}) with the tarball installed. CC and CXX are `false`, so any
 * attempt to compile during install fails it.
 */
export async function installApp(tarball: string, options: { ignoreScripts?: boolean } = {}): Promise<App> {
  const dir = scratchDir('app');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }, null, 2) + '\n');
  const args = ['install', tarball, '--no-audit', '--no-fund', '--loglevel=warn', '--foreground-scripts'];
  if (options.ignoreScripts) args.push('--ignore-scripts');
  const { stdout, stderr } = await run('npm', args, dir, cleanEnv({ CC: 'false', CXX: 'false' }));
  return { dir, pkg: join(dir, 'node_modules', 'multiproc'), log: stdout + stderr };
}

export interface NodeResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <script>` in `cwd` (with the test MARKER, so the suite's leak check sees it). */
export function runScript(cwd: string, script: string, timeoutMs = 30_000): Promise<NodeResult> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [script, MARKER], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('error', rej);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}

/** Every file below `dir`, relative to it. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}
