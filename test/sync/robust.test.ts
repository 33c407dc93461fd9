// A holder killed while it holds a Lock, an RLock or a Semaphore unit does not deadlock the others:
// the next acquirer takes it over and is told (ownerDied, and a MULTIPROC_OWNER_DIED warning).
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

// The holder kills itself (SIGKILL) 200 ms after it reported holding: a blocking acquire here
// keeps this process's own timers from running.
const killedHolder = (make: string, acquire: string) => `
  import { Lock, RLock, Semaphore, BoundedSemaphore, Event, Process } from LIB;
  const warnings = [];
  process.on('warning', (w) => warnings.push(w.code));
  const x = ${make};
  const held = new Event();
  const p = new Process({
    target: async (x, held) => {
      x.acquireSync();
      held.set();
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300);
      await new Promise(() => setInterval(() => {}, 1000));
    },
    args: [x, held],
  });
  p.start();
  if (!held.waitSync(20000)) throw new Error('child never took it');
  const before = x.acquireSync({ timeout: 150 });
  const t = performance.now();
  const got = await ${acquire};
  const ms = performance.now() - t;
  await p.join();
  await new Promise((r) => setImmediate(r));
  console.log(JSON.stringify({ before, got, ownerDied: x.ownerDied, ms, code: p.exitCode, warnings }));
`;

describe('robust ownership', () => {
  for (const [name, make] of [
    ['Lock', 'new Lock()'],
    ['RLock', 'new RLock()'],
    ['Semaphore', 'new Semaphore(1)'],
    ['BoundedSemaphore', 'new BoundedSemaphore(1)'],
  ]) {
    for (const [mode, acquire] of [
      ['acquireSync', 'x.acquireSync({ timeout: 20000 })'],
      ['acquire', 'x.acquire({ timeout: 20000 })'],
    ]) {
      it(`${name}: ${mode} takes over from a holder killed with SIGKILL`, async () => {
        const r = JSON.parse(await runNodeOk(killedHolder(make, acquire)));
        expect(r.before).toBe(false);
        expect(r.got).toBe(true);
        expect(r.ownerDied).toBe(true);
        expect(r.code).toBe(-9);
        expect(r.warnings).toContain('MULTIPROC_OWNER_DIED');
        expect(r.ms).toBeLessThan(15000);
      });
    }
  }

  it('a non-blocking acquire of a semaphore recovers units of dead holders too', async () => {
    const out = await runNodeOk(`
      import { Semaphore, Process } from LIB;
      const s = new Semaphore(2);
      const p = new Process({ target: (s) => { s.acquireSync(); s.acquireSync(); process.kill(process.pid, 'SIGKILL'); }, args: [s] });
      p.start(); await p.join();
      const v0 = s.getValue();
      const got = s.acquireSync({ block: false });
      console.log(JSON.stringify({ code: p.exitCode, v0, got, after: s.getValue() }));
    `);
    expect(JSON.parse(out)).toEqual({ code: -9, v0: 0, got: true, after: 1 });
  });

  it('a counting semaphore with robust: false does not give back what a dead process took', async () => {
    const out = await runNodeOk(`
      import { Semaphore, Process } from LIB;
      const s = new Semaphore(1, { robust: false });
      const p = new Process({ target: (s) => { s.acquireSync(); process.kill(process.pid, 'SIGKILL'); }, args: [s] });
      p.start(); await p.join();
      console.log(JSON.stringify({ code: p.exitCode, got: s.acquireSync({ timeout: 300 }) }));
    `);
    expect(JSON.parse(out)).toEqual({ code: -9, got: false });
  });

  // The token is written just after the claim and cleared just before the release: a holder
  // killed in between leaves its tid with token 0 (seen in a queue's put lock after SIGKILLs).
  for (const [name, make] of [
    ['Lock', 'new Lock()'],
    ['RLock', 'new RLock()'],
  ]) {
    it(`${name}: a holder killed between its claim and its token store (token 0) is taken over too`, async () => {
      const out = await runNodeOk(`
        import { Lock, RLock, Process } from LIB;
        const x = ${make};
        const p = new Process({
          target: (x) => {
            x.acquireSync();
            x.word.w[x.word.i + 1] = 0; // as if killed before the token store
            process.kill(process.pid, 'SIGKILL');
          },
          args: [x],
        });
        p.start();
        await p.join();
        const t = performance.now();
        const got = x.acquireSync({ timeout: 20000 });
        console.log(JSON.stringify({ code: p.exitCode, got, ownerDied: x.ownerDied, ms: performance.now() - t }));
      `);
      const r = JSON.parse(out);
      expect(r).toMatchObject({ code: -9, got: true, ownerDied: true });
      expect(r.ms).toBeLessThan(15000);
    });
  }
});
