// setStartMethod / getStartMethod, and the forkserver's warm processes.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('start methods', () => {
  it("defaults to 'spawn'; once set, changing needs force; unknown names are refused", async () => {
    const out = await runNodeOk(`
      import { setStartMethod, getStartMethod } from LIB;
      const seen = [getStartMethod()];
      setStartMethod('spawn');
      const errs = [];
      try { setStartMethod('forkserver'); } catch (e) { errs.push(e.message); }
      try { setStartMethod('fork', { force: true }); } catch (e) { errs.push(e.message); }
      setStartMethod('forkserver', { force: true });
      seen.push(getStartMethod());
      setStartMethod('spawn', { force: true });
      console.log(JSON.stringify({ seen, errs }));
    `);
    expect(JSON.parse(out)).toEqual({
      seen: ['spawn', 'forkserver'],
      errs: ["setStartMethod: the start method is already set to 'spawn'; pass { force: true } to change it", "setStartMethod: unknown start method 'fork'; use 'spawn' or 'forkserver'"],
    });
  });

  it('changing the start method back and forth adds one exit hook in all, and leaves no warm process behind', async () => {
    const out = await runNodeOk(`
      import { setStartMethod } from LIB;
      const before = process.listenerCount('exit');
      for (let i = 0; i < 20; i++) setStartMethod(i % 2 ? 'spawn' : 'forkserver', { force: true });
      console.log(process.listenerCount('exit') - before);
    `);
    expect(Number(out.trim())).toBeLessThanOrEqual(1);
  });

  it('forkserver: targets run in warm processes, exit codes and daemons as with spawn, and the parent exits cleanly', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, setStartMethod } from LIB;
      setStartMethod('forkserver');
      await new Promise((r) => setTimeout(r, 3000)); // let the warm processes load (slow under ASan)
      const [a, b] = Pipe();
      const results = [];
      for (let i = 0; i < 4; i++) {
        const p = new Process({ target: (conn, i) => { conn.send(i); process.exitCode = i; }, args: [b, i] });
        const t0 = performance.now();
        p.start();
        results.push({ msg: await a.recv(), ms: performance.now() - t0 });
        await p.join();
        results[i].code = p.exitCode;
      }
      console.log(JSON.stringify(results));
    `);
    const results = JSON.parse(out);
    expect(results.map((r: { msg: number }) => r.msg)).toEqual([0, 1, 2, 3]);
    expect(results.map((r: { code: number }) => r.code)).toEqual([0, 1, 2, 3]);
    // The first start uses a process loaded in advance: far below a fresh node start-up.
    expect(results[0].ms).toBeLessThan(1000);
  });
});
