// Both target forms, import() from inside a function target, and the missing-variable message.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, runNode, runNodeOk } from '../helpers/child.js';

const fixtures = join(root, 'test', 'fixtures', 'targets.mjs');

describe('targets', () => {
  it('{ module, name } as a path and as a URL, with a Connection in args', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe } from LIB;
      const results = [];
      for (const module of [${JSON.stringify(fixtures)}, new URL(${JSON.stringify(pathToFileURL(fixtures).href)})]) {
        const [a, b] = Pipe();
        const p = new Process({ target: { module, name: 'greet' }, args: [b, 'parent'] });
        p.start();
        b.close();
        results.push(await a.recv());
        await p.join();
        results.push(p.exitCode);
      }
      console.log(JSON.stringify(results));
    `);
    expect(JSON.parse(out)).toEqual(['hello parent from Process-1', 0, 'hello parent from Process-2', 0]);
  });

  it('a module target that is not an exported function fails the child with a clear message', async () => {
    const r = await runNode(`
      import { Process } from LIB;
      const p = new Process({ target: { module: ${JSON.stringify(fixtures)}, name: 'notAFunction' } });
      p.start();
      await p.join();
      console.log(p.exitCode);
    `).done;
    expect(r.stdout.trim()).toBe('1');
    expect(r.stderr).toMatch(/the module has no exported function 'notAFunction'/);
  });

  it("a function target's import() resolves from the parent's entry module", async () => {
    // Snippets live in .tmp/test-*/ of the project.
    const out = await runNodeOk(`
      import { Process, Pipe } from LIB;
      const [a, b] = Pipe();
      const p = new Process({
        target: async (conn) => {
          const { greet } = await import('../../test/fixtures/targets.mjs');
          const fc = await import('fast-check');
          conn.send([typeof greet, typeof fc.assert]);
        },
        args: [b],
      });
      p.start();
      console.log(JSON.stringify(await a.recv()));
      await p.join();
    `);
    expect(JSON.parse(out)).toEqual(['function', 'function']);
  });

  it('a function target that uses a variable of the parent fails with a message naming it', async () => {
    const r = await runNode(`
      import { Process } from LIB;
      const secret = 42;
      const p = new Process({ target: function usesSecret() { return secret + 1; } });
      p.start();
      await p.join();
      console.log(p.exitCode);
    `).done;
    expect(r.stdout.trim()).toBe('1');
    expect(r.stderr).toMatch(/usesSecret\(\) uses 'secret', which does not exist in the child process/);
    expect(r.stderr).toMatch(/\{ module, name \} form/);
  });

  it('rejects what cannot be a target, and an uncloneable argument at start(), naming it', async () => {
    const out = await runNodeOk(`
      import { Process } from LIB;
      const errs = [];
      for (const target of [Math.max, class A {}, 42, { module: '' , name: 'x' }]) {
        try { new Process({ target }); } catch (e) { errs.push(e.message); }
      }
      const p = new Process({ target: (x) => x, args: [1, { cb: () => 2 }], name: 'Bad' });
      try { p.start(); } catch (e) { errs.push(e.message); }
      console.log(JSON.stringify({ errs, pid: p.pid ?? null }));
    `);
    const { errs, pid } = JSON.parse(out);
    expect(errs[0]).toMatch(/max is a native or bound function/);
    expect(errs[1]).toMatch(/a class cannot be a target/);
    expect(errs[2]).toMatch(/target must be a function or \{ module, name \}, got number/);
    expect(errs[3]).toMatch(/target.module must be a file path/);
    expect(errs[4]).toBe('Process Bad: cannot start: cannot send value at args[1].cb (a function): messages must be structured-clonable (see v8.serialize)');
    expect(pid).toBe(null);
  });

  it('method shorthand functions work as targets', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe } from LIB;
      const obj = { async run(conn) { conn.send('ran'); } };
      const [a, b] = Pipe();
      const p = new Process({ target: obj.run, args: [b] });
      p.start();
      console.log(await a.recv());
      await p.join();
    `);
    expect(out.trim()).toBe('ran');
  });
});
