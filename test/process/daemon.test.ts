// Non-daemon children keep their parent alive; daemon children die with it, even on SIGKILL.
import { describe, expect, it } from 'vitest';
import { runNode, runNodeOk } from '../helpers/child.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('daemon', () => {
  it('a non-daemon child keeps the parent running until it ends', async () => {
    const t0 = Date.now();
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: () => new Promise((r) => setTimeout(() => { console.log('child finished'); r(); }, 500)) });
      p.start();
      console.log('parent reached its end');
    `);
    expect(out).toBe('parent reached its end\nchild finished\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
  });

  it('a daemon child is terminated when the parent exits', async () => {
    const out = await runNodeOk(`
      import { Process, currentProcess } from LIB;
      const p = new Process({ target: () => new Promise(() => setInterval(() => {}, 1000)), daemon: true });
      p.start();
      await new Promise((r) => setTimeout(r, 300));
      console.log(p.pid);
    `);
    const pid = Number(out);
    expect(await until(() => !alive(pid), 5000)).toBe(true);
  });

  it('a daemon child dies when its parent is killed with SIGKILL', async () => {
    const parent = runNode(`
      import { Process } from LIB;
      const p = new Process({ target: () => new Promise(() => setInterval(() => {}, 1000)), daemon: true });
      p.start();
      await new Promise((r) => setTimeout(r, 300));
      console.log(p.pid);
      setInterval(() => {}, 1000);
    `);
    let out = '';
    parent.proc.stdout!.on('data', (d) => (out += d));
    expect(await until(() => out.includes('\n'), 10_000)).toBe(true);
    const pid = Number(out);
    expect(alive(pid)).toBe(true);
    parent.proc.kill('SIGKILL');
    await parent.done;
    expect(await until(() => !alive(pid), 5000)).toBe(true);
  });

  it('daemon is inherited from the creating process and fixed once started', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: () => {} });
      const before = p.daemon;
      p.daemon = true;
      p.start();
      let err = '';
      try { p.daemon = false; } catch (e) { err = e.message; }
      await p.join();
      console.log(JSON.stringify({ before, after: p.daemon, err }));
    `);
    expect(JSON.parse(out)).toEqual({ before: false, after: true, err: 'Process Process-1: daemon cannot be changed once the process has started' });
  });
});
