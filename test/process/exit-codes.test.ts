// Exit codes as in Python: 0 on return, 1 on a throw (stack on stderr), n on exit(n), -signal.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

// Each case runs in a fresh parent so the child's stderr can be captured and checked.
async function run(body: string): Promise<{ exitCode: number; stderr: string }> {
  const out = await runNodeOk(`
    import { Process } from LIB;
    import { spawnSync } from 'node:child_process';
    ${body}
  `);
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('exit codes', () => {
  it('0 when the target returns or resolves, also for async targets', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const a = new Process({ target: () => 42 });
      const b = new Process({ target: async (ms) => { await new Promise((r) => setTimeout(r, ms)); }, args: [50] });
      a.start(); b.start();
      await a.join(); await b.join();
      console.log(JSON.stringify([a.exitCode, b.exitCode]));
    `);
    expect(JSON.parse(out)).toEqual([0, 0]);
  });

  it('1 when the target throws, with the stack on the child stderr', async () => {
    const out = await runNodeOk(`
      import { spawn } from 'node:child_process';
      import { Process } from LIB;
      if (process.argv[2] === 'inner') {
        const p = new Process({ target: function failing() { throw new RangeError('it broke'); }, name: 'Breaker' });
        p.start();
        await p.join();
        console.log(p.exitCode);
      } else {
        const c = spawn(process.execPath, [new URL(import.meta.url).pathname, 'inner', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '', err = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (err += d));
        await new Promise((r) => c.on('close', r));
        console.log(JSON.stringify({ out, err }));
      }
    `);
    const { out: inner, err } = JSON.parse(out);
    expect(inner.trim()).toBe('1');
    expect(err).toMatch(/^Process Breaker:\nRangeError: it broke\n\s+at failing/m);
  });

  it('n when the target calls process.exit(n)', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: (n) => process.exit(n), args: [7] });
      p.start();
      await p.join();
      console.log(p.exitCode);
    `);
    expect(out.trim()).toBe('7');
  });

  it('-signal on death by signal: terminate() gives -15, kill() gives -9', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const forever = () => new Promise(() => setInterval(() => {}, 1000));
      const a = new Process({ target: forever });
      const b = new Process({ target: forever });
      a.start(); b.start();
      await new Promise((r) => setTimeout(r, 300));
      const alive = [a.isAlive(), b.isAlive()];
      a.terminate(); b.kill();
      await a.join(); await b.join();
      console.log(JSON.stringify({ alive, codes: [a.exitCode, b.exitCode], after: [a.isAlive(), b.isAlive()] }));
    `);
    expect(JSON.parse(out)).toEqual({ alive: [true, true], codes: [-15, -9], after: [false, false] });
  });

  it('exitCode is null before start and while running', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: () => new Promise((r) => setTimeout(r, 300)) });
      const before = p.exitCode;
      p.start();
      const during = p.exitCode;
      await p.join();
      console.log(JSON.stringify([before, during, p.exitCode, typeof p.pid]));
    `);
    expect(JSON.parse(out)).toEqual([null, null, 0, 'number']);
  });
});
