// Suite-wide leak check: after all tests, nothing of ours may be left in /dev/shm and no
// child process started by a test (MARKER in their argv, or this checkout's bootstrap) may still run.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BOOTSTRAP_PATH, MARKER } from './marker.js';

function shmEntries(): Set<string> {
  try {
    return new Set(readdirSync('/dev/shm'));
  } catch {
    return new Set();
  }
}

export function leftoverChildren(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(MARKER) || cmd.includes(BOOTSTRAP_PATH)) found.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

let before: Set<string>;

export function setup(): void {
  before = shmEntries();
}

export async function teardown(): Promise<void> {
  // A child that was just killed may take a moment to be reaped.
  let children = leftoverChildren();
  for (let i = 0; i < 50 && children.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
    children = leftoverChildren();
  }
  // The snippet files children ran (test/helpers/child.ts); a worker that vitest ended may not
  // have removed its own.
  rmSync(join(resolve(import.meta.dirname, '..', '..'), '.tmp'), { recursive: true, force: true });
  const leaked = [...shmEntries()].filter((e) => !before.has(e));
  const problems: string[] = [];
  if (leaked.length) problems.push(`left in /dev/shm: ${leaked.join(', ')}`);
  if (children.length) problems.push(`test children still running:\n${children.join('\n')}`);
  if (problems.length) throw new Error(`the suite leaked:\n${problems.join('\n')}`);
}
