// Nothing of ours outlives its creator in /dev/shm: a creator that is SIGKILLed, or exits without
// unlink(), has its named segments unlinked by its tracker; a process that only attached leaves them be.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { SharedMemory } from '../../lib/index.js';
import { runNode, runNodeOk } from '../helpers/child.js';

/** Waits (up to a wide limit) until none of `names` is in /dev/shm; the ones still there. */
async function gone(names: string[], ms = 20_000): Promise<string[]> {
  const start = Date.now();
  let left = names;
  while ((left = names.filter((n) => existsSync(`/dev/shm/${n}`))).length && Date.now() - start < ms) await new Promise((r) => setTimeout(r, 50));
  return left;
}

describe('the shared-memory tracker', () => {
  it('a creator killed with SIGKILL leaves nothing in /dev/shm (SharedMemory and ShareableList), and the tracker says what it unlinked', async () => {
    const child = runNode(`
      import { SharedMemory, ShareableList, Value } from LIB;
      const a = new SharedMemory({ create: true, size: 1 << 16 });
      const b = new SharedMemory({ name: 'mp-killed-' + process.pid, create: true, size: 10 });
      const l = new ShareableList([1, 'two', null]);
      const v = Value('i', 5); // anonymous: the kernel frees it
      console.log(JSON.stringify([a.name, b.name, l.shm.name]));
      setInterval(() => {}, 1000);
    `);
    const names: string[] = await new Promise((resolve) => child.proc.stdout!.once('data', (d) => resolve(JSON.parse(String(d)))));
    for (const n of names) expect(existsSync(`/dev/shm/${n}`)).toBe(true);
    child.proc.kill('SIGKILL');
    const r = await child.done; // after the tracker too: it holds the child's stderr until it ends
    expect(r.signal).toBe('SIGKILL');
    expect(await gone(names)).toEqual([]);
    for (const n of names) expect(r.stderr).toContain(`multiproc: a process exited without unlinking shared memory ${n}; the tracker unlinked it`);
  });

  it('a creator that exits without unlink() has its segments unlinked; one that unlinked gets no warning', async () => {
    const r = await runNode(`
      import { SharedMemory } from LIB;
      const kept = new SharedMemory({ create: true, size: 100 });
      const done = new SharedMemory({ create: true, size: 100 });
      done.close();
      done.unlink();
      console.log(JSON.stringify([kept.name, done.name]));
    `).done;
    expect(r.code).toBe(0);
    const [kept, done] = JSON.parse(r.stdout);
    expect(await gone([kept])).toEqual([]);
    expect(r.stderr).toContain(`without unlinking shared memory ${kept};`);
    expect(r.stderr).not.toContain(done);
  });

  it('a process that only attached does not unlink at its exit; the creator still owns the name', async () => {
    const shm = new SharedMemory({ create: true, size: 64 });
    try {
      const out = await runNodeOk(`
        import { SharedMemory } from LIB;
        const shm = new SharedMemory({ name: ${JSON.stringify(shm.name)} });
        shm.buf.write('attached');
        console.log('ok');
      `);
      expect(out.trim()).toBe('ok');
      expect(existsSync(`/dev/shm/${shm.name}`)).toBe(true);
      expect(shm.buf.toString('utf8', 0, 8)).toBe('attached');
    } finally {
      shm.close();
      shm.unlink();
    }
  });

  it('a child that receives a segment and unlinks it: the creator\'s tracker has nothing left to do', async () => {
    const r = await runNode(`
      import { Process, SharedMemory } from LIB;
      const shm = new SharedMemory({ create: true, size: 64 });
      const p = new Process({ target: (shm) => { shm.unlink(); shm.close(); }, args: [shm] });
      p.start();
      await p.join();
      console.log(JSON.stringify({ name: shm.name, code: p.exitCode }));
    `).done;
    const { name, code } = JSON.parse(r.stdout);
    expect(code).toBe(0);
    expect(existsSync(`/dev/shm/${name}`)).toBe(false);
    expect(r.stderr).toBe('');
  });
});
