// Shared by the Pool tests: both pool kinds, module targets from test/fixtures/pool-tasks.mjs,
// and pools that are always terminated after each test.
import { afterEach } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool, ThreadPool, type PoolOptions } from '../../lib/index.js';
import { root } from './child.js';

export const FIXTURES = join(root, 'test', 'fixtures', 'pool-tasks.mjs');

/** `{ module, name }` of an export of the fixtures module. */
export function task(name: string): { module: string; name: string } {
  return { module: FIXTURES, name };
}

export const KINDS = [
  ['Pool', Pool],
  ['ThreadPool', ThreadPool],
] as const;

export type PoolClass = typeof Pool;

const made = new Set<Pool>();

/** A pool that is terminated after the current test (whatever the test did with it). */
export function makePool(P: PoolClass, options: PoolOptions | number = 2): Pool {
  const p = new P(options);
  made.add(p);
  return p;
}

afterEach(async (ctx) => {
  const all = [...made];
  made.clear();
  if (ctx.task.result?.state === 'fail') {
    // What each pool held when the test failed (a hang shows here).
    for (const p of all) console.error('pool state:', JSON.stringify((p as unknown as Record<symbol, () => unknown>)[Symbol.for('multiproc.poolState')]!()));
  }
  await Promise.all(all.map((p) => p.terminate()));
});

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Running child processes of this process, from /proc (what must be gone after a pool ends). */
export function childPids(): number[] {
  const out: number[] = [];
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.push(...readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the thread ended
    }
  }
  // A child that has exited but is not reaped yet (libuv reaps on SIGCHLD, a moment later) is not running.
  return out.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  });
}
