// Names, currentProcess/parentProcess/activeChildren/cpuCount, and the child's stdout.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('identity', () => {
  it('names Process-1, Process-2 and Process-1:1 for a grandchild; currentProcess and parentProcess', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, currentProcess, parentProcess, cpuCount } from LIB;
      const [a, b] = Pipe();
      // A named function expression can refer to itself in the child too.
      async function report(conn, depth) {
        const { Process, currentProcess, parentProcess } = await import('multiproc');
        conn.send({ me: currentProcess(), parent: parentProcess() });
        if (depth > 0) {
          const p = new Process({ target: report, args: [conn, depth - 1] });
          p.start();
          await p.join();
        }
      }
      const p1 = new Process({ target: report, args: [b, 1] });
      const p2 = new Process({ target: () => {}, name: 'custom' });
      p1.start();
      const child = await a.recv(), grandchild = await a.recv();
      await p1.join();
      console.log(JSON.stringify({ main: currentProcess(), parent: parentProcess(), child, grandchild, names: [p1.name, p2.name], pid: p1.pid, cpus: cpuCount() }));
    `);
    const r = JSON.parse(out);
    expect(r.main.name).toBe('MainProcess');
    expect(r.parent).toBe(null);
    expect(r.names).toEqual(['Process-1', 'custom']);
    expect(r.child.me).toEqual({ name: 'Process-1', pid: r.pid, daemon: false });
    expect(r.child.parent).toEqual({ name: 'MainProcess', pid: r.main.pid, daemon: false });
    expect(r.grandchild.me.name).toBe('Process-1:1');
    expect(r.grandchild.parent).toEqual({ name: 'Process-1', pid: r.pid, daemon: false });
    expect(r.cpus).toBeGreaterThanOrEqual(1);
  });

  it('activeChildren lists the running children only', async () => {
    const out = await runNodeOk(`
      import { Process, Event, activeChildren } from LIB;
      const done = new Event();
      const p = new Process({ target: (done) => done.wait(), args: [done], name: 'slow' });
      const q = new Process({ target: () => {}, name: 'quick' });
      p.start(); q.start();
      await q.join();
      const during = activeChildren().map((c) => c.name);
      done.set();
      await p.join();
      console.log(JSON.stringify({ during, after: activeChildren().length }));
    `);
    expect(JSON.parse(out)).toEqual({ during: ['slow'], after: 0 });
  });

  it('env and execArgv reach the child, with either start method', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, setStartMethod } from LIB;
      const results = [];
      for (const method of ['spawn', 'forkserver']) {
        setStartMethod(method, { force: true });
        const [a, b] = Pipe();
        const p = new Process({
          target: (c) => c.send({ v: process.env.MP_TEST_VAR ?? null, argv: process.execArgv }),
          args: [b], env: { ...process.env, MP_TEST_VAR: method }, execArgv: ['--max-old-space-size=123'],
        });
        p.start();
        results.push(await a.recv());
        await p.join();
      }
      console.log(JSON.stringify(results));
    `);
    expect(JSON.parse(out)).toEqual([
      { v: 'spawn', argv: ['--max-old-space-size=123'] },
      { v: 'forkserver', argv: ['--max-old-space-size=123'] },
    ]);
  });

  it("the child's stdout and stderr are the parent's", async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const p = new Process({ target: (w) => console.log('child says', w), args: ['hi'] });
      p.start();
      await p.join();
      console.log('parent done');
    `);
    expect(out).toBe('child says hi\nparent done\n');
  });
});
