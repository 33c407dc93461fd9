// No fd outlives its Connection: close() releases it, and so does garbage collection.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { Pipe } from '../../lib/index.js';
import { runNodeOk } from '../helpers/child.js';

const fdCount = () => readdirSync('/proc/self/fd').length;

describe('fds', () => {
  it('close() releases both fds of 1,000 pipes', async () => {
    const before = fdCount();
    for (let i = 0; i < 1000; i++) {
      const [a, b] = Pipe(i % 2 === 0);
      b.send(i);
      await a.recv();
      a.close();
      b.close();
    }
    expect(fdCount()).toBe(before);
  });

  it('a Connection dropped without close() has its fd closed when collected', async () => {
    const out = await runNodeOk(
      `import { Pipe } from LIB;
       import { readdirSync } from 'node:fs';
       const count = () => readdirSync('/proc/self/fd').length;
       const before = count();
       (() => { for (let i = 0; i < 200; i++) { const [a, b] = Pipe(); a.send(i); b.recvSync(); } })();
       for (let i = 0; i < 10 && count() > before; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
       console.log(count() - before);`,
      { execArgv: ['--expose-gc'] },
    );
    expect(Number(out)).toBe(0);
  });
});
