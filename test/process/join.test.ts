// join / joinSync with and without timeouts; start/close misuse.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('join', () => {
  it('join(ms) returns after the timeout while the child runs on; join() then waits for it', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: () => new Promise((r) => setTimeout(r, 1500)) });
      p.start();
      let t0 = Date.now();
      await p.join(200);
      const timedOut = { ms: Date.now() - t0, alive: p.isAlive(), code: p.exitCode };
      t0 = Date.now();
      await p.join();
      console.log(JSON.stringify({ timedOut, code: p.exitCode, alive: p.isAlive() }));
    `);
    const r = JSON.parse(out);
    expect(r.timedOut.ms).toBeGreaterThanOrEqual(180);
    expect(r.timedOut.ms).toBeLessThan(1400);
    expect(r.timedOut.alive).toBe(true);
    expect(r.timedOut.code).toBe(null);
    expect(r.code).toBe(0);
    expect(r.alive).toBe(false);
  });

  it('joinSync(ms) blocks at most ms; joinSync() blocks until the end and sees the exit code at once', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: (n) => new Promise((r) => setTimeout(() => process.exit(n), 800)), args: [3] });
      p.start();
      let t0 = Date.now();
      p.joinSync(150);
      const first = { ms: Date.now() - t0, code: p.exitCode };
      p.joinSync();
      console.log(JSON.stringify({ first, code: p.exitCode, alive: p.isAlive() }));
    `);
    const r = JSON.parse(out);
    expect(r.first.ms).toBeGreaterThanOrEqual(140);
    expect(r.first.ms).toBeLessThan(750);
    expect(r.first.code).toBe(null);
    expect(r.code).toBe(3);
    expect(r.alive).toBe(false);
  });

  it('refuses to start twice, to join before start, and to close a running process', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: () => new Promise((r) => setTimeout(r, 300)), name: 'Twice' });
      const errs = [];
      try { await p.join(); } catch (e) { errs.push(e.message); }
      p.start();
      try { p.start(); } catch (e) { errs.push(e.message); }
      try { p.close(); } catch (e) { errs.push(e.message); }
      await p.join();
      p.close(); p.close();
      try { p.isAlive(); } catch (e) { errs.push(e.message); }
      console.log(JSON.stringify(errs));
    `);
    expect(JSON.parse(out)).toEqual([
      'Process Twice: can only join a started process',
      'Process Twice: cannot start a process twice',
      'Process Twice: cannot close a process that is still running; join() or terminate() it first',
      'Process Twice: isAlive() on a closed Process',
    ]);
  });
});
