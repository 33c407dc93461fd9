// No fd or mapping outlives its object: Values and arrays (sent or not) give their fds back when
// collected, SharedMemory when closed or collected.
import { describe, expect, it } from 'vitest';
import { SharedMemory, ShareableList } from '../../lib/index.js';
import { openFds, runNodeOk } from '../helpers/child.js';

describe('fds and mappings', () => {
  it('500 SharedMemory and ShareableList create/close/unlink cycles leave no fd, mapping or name behind', async () => {
    // The first named segment starts this process's tracker, which keeps one fd (a pipe) for good.
    const first = new SharedMemory({ create: true, size: 1 });
    first.close();
    first.unlink();
    const fds = openFds().length;
    const names: string[] = [];
    for (let i = 0; i < 250; i++) {
      const shm = new SharedMemory({ create: true, size: 8192 });
      const other = new SharedMemory({ name: shm.name });
      other.buf[0] = i;
      names.push(shm.name);
      other.close();
      shm.close();
      shm.unlink();
      const l = new ShareableList([i, 'x']);
      names.push(l.shm.name);
      l.close();
      l.unlink();
    }
    expect(openFds().length).toBe(fds);
    await new Promise((r) => setImmediate(r));
    const { readFileSync, readdirSync } = await import('node:fs');
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const shm = new Set(readdirSync('/dev/shm'));
    expect(names.filter((n) => maps.includes(n) || shm.has(n))).toEqual([]);
  });

  it('Values, arrays and SharedMemory dropped without close give back their fds once collected, also after travelling', async () => {
    const out = await runNodeOk(
      `import { Pipe, Value, SharedArray, RawArray, SharedMemory, Lock } from LIB;
       import { readdirSync } from 'node:fs';
       const count = () => readdirSync('/proc/self/fd').length;
       const [a, b] = Pipe();
       // The tracker's pipe stays: start it before counting.
       const first = new SharedMemory({ create: true, size: 1 });
       first.close();
       first.unlink();
       const before = count();
       const names = [];
       (() => {
         for (let i = 0; i < 200; i++) {
           const lock = new Lock();
           a.send([Value('i', i), SharedArray('d', 100), RawArray('b', 3), Value('q', 1n, { lock })]);
           const [v, arr, r, w] = b.recvSync();
           if (v.value !== i || w.getLock().acquireSync({ block: false }) !== true) throw new Error('wrong');
           const shm = new SharedMemory({ create: true, size: 4096 });
           names.push(shm.name);
           a.send(shm);
           b.recvSync().buf[0] = 1;
           shm.unlink(); // the name; the fds go with the objects
         }
       })();
       for (let i = 0; i < 20 && count() > before; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
       console.log(count() - before);`,
      { execArgv: ['--expose-gc'] },
    );
    expect(Number(out)).toBe(0);
  });
});
