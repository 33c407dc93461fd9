// Value and SharedArray across real processes: in Process args, through a Connection to a running
// process, and the proof point: 4 processes x 10,000 increments under the lock are 40,000.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('values shared by processes', () => {
  it.each(['spawn', 'forkserver'])('a Value, RawValue, SharedArray and RawArray in Process args (%s): the child sees and writes the same memory', async (method) => {
    const out = await runNodeOk(`
      import { Process, Value, RawValue, SharedArray, RawArray, setStartMethod } from LIB;
      setStartMethod(${JSON.stringify(method)});
      const v = Value('d', 1.5);
      const q = RawValue('q', 2n ** 62n);
      const a = SharedArray('i', [1, 2, 3]);
      const r = RawArray('c', 'abc');
      const p = new Process({
        target: (v, q, a, r) => {
          const seen = { v: v.value, q: String(q.value), a: a.toArray(), r: r.toArray().toString(), lock: v.getLock().constructor.name, cls: [v, q, a, r].map((x) => x.constructor.name) };
          v.value = seen.v * 2;
          q.value += 1n;
          a.set(-1, 30);
          r.view[0] = 0x41;
          console.log(JSON.stringify(seen));
        },
        args: [v, q, a, r],
      });
      p.start();
      await p.join();
      console.log(JSON.stringify({ code: p.exitCode, v: v.value, q: String(q.value), a: a.toArray(), r: r.toArray().toString() }));
    `);
    const [child, parent] = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(child).toEqual({ v: 1.5, q: String(2n ** 62n), a: [1, 2, 3], r: 'abc', lock: 'RLock', cls: ['SynchronizedValue', 'RawSharedValue', 'SynchronizedArray', 'RawSharedArray'] });
    expect(parent).toEqual({ code: 0, v: 3, q: String(2n ** 62n + 1n), a: [1, 2, 30], r: 'Abc' });
  });

  it('a Value sent through a Connection to a running process, its lock with it (also a Lock given by the user)', async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, Value, Lock } from LIB;
      const [here, there] = Pipe();
      const p = new Process({
        target: async (conn) => {
          const { v, w } = await conn.recv();
          // Holds both locks until told to let go: the parent must see them held.
          v.acquireSync();
          w.getLock().acquireSync();
          v.value = 7;
          conn.send('holding');
          await conn.recv();
          v.release();
          w.getLock().release();
          conn.send('released');
        },
        args: [there],
      });
      p.start();
      there.close();
      const userLock = new Lock();
      const v = Value('i', 0);
      const w = Value('i', 0, { lock: userLock });
      here.send({ v, w });
      const report = [await here.recv(), v.value, v.acquireSync({ block: false }), userLock.acquireSync({ timeout: 20 })];
      here.send('go');
      report.push(await here.recv(), await v.acquire({ timeout: 5000 }), userLock.acquireSync({ timeout: 5000 }));
      await p.join();
      console.log(JSON.stringify(report));
    `);
    expect(JSON.parse(out)).toEqual(['holding', 7, false, false, 'released', true, true]);
  });

  for (const mode of ['sync', 'async'] as const) {
    it(`4 processes x 10,000 increments of a Value under its lock are 40,000 (${mode} acquire)`, async () => {
      const out = await runNodeOk(`
        import { Process, Value, SharedArray, Barrier } from LIB;
        // All four start looping together, when the last one is up.
        const go = new Barrier(4);
        const v = Value('i', 0);
        const big = Value('q', 0n);
        const a = SharedArray('d', 2);
        const ps = Array.from({ length: 4 }, (_, k) => new Process({
          target: ${mode === 'sync'
            ? `async (v, big, a, k, go) => {
                await go.wait();
                const lock = v.getLock();
                for (let i = 0; i < 10000; i++) {
                  lock.acquireSync();
                  v.value += 1;
                  lock.release();
                  big.acquireSync();
                  big.value += 1n;
                  big.release();
                  a.acquireSync();
                  a.set(k % 2, a.get(k % 2) + 0.5);
                  a.release();
                }
              }`
            : `async (v, big, a, k, go) => {
                await go.wait();
                for (let i = 0; i < 10000; i++) {
                  await v.acquire();
                  v.value += 1;
                  v.release();
                  await big.getLock().acquire();
                  big.value += 1n;
                  big.getLock().release();
                  await a.acquire();
                  a.set(k % 2, a.get(k % 2) + 0.5);
                  a.release();
                }
              }`},
          args: [v, big, a, k, go],
        }));
        for (const p of ps) p.start();
        for (const p of ps) await p.join();
        console.log(JSON.stringify({ codes: ps.map((p) => p.exitCode), v: v.value, big: String(big.value), a: a.toArray() }));
      `);
      expect(JSON.parse(out)).toEqual({ codes: [0, 0, 0, 0], v: 40000, big: '40000', a: [10000, 10000] });
    });
  }

  it("a SharedArray's view is shared: a write through one process's view is read through another's", async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, SharedArray } from LIB;
      const a = SharedArray('H', 1000);
      const [here, there] = Pipe();
      const p = new Process({
        target: async (a, conn) => {
          a.view.fill(7);
          a.view[999] = 65535;
          conn.send('filled');
          await conn.recv();
          conn.send(a.view.reduce((s, x) => s + x, 0));
        },
        args: [a, there],
      });
      p.start();
      await here.recv();
      const seen = [a.get(0), a.get(500), a.get(999)];
      a.view.fill(1);
      here.send('your turn');
      const sum = await here.recv();
      await p.join();
      console.log(JSON.stringify({ seen, sum }));
    `);
    expect(JSON.parse(out)).toEqual({ seen: [7, 7, 65535], sum: 1000 });
  });

  it('a Value received and passed on keeps its own lock: three processes share one lock', async () => {
    const out = await runNodeOk(`
      import { Process, Value } from LIB;
      const v = Value('i', 0);
      const p = new Process({
        target: async (v) => {
          const { Process } = await import('multiproc');
          const grandchild = new Process({ target: (v) => { v.acquireSync(); v.value += 100; v.release(); }, args: [v] });
          grandchild.start();
          await grandchild.join();
          v.acquireSync();
          v.value += 10;
          v.release();
        },
        args: [v],
      });
      p.start();
      await p.join();
      v.acquireSync();
      v.value += 1;
      v.release();
      console.log(v.value);
    `);
    expect(Number(out)).toBe(111);
  });

  it("a process killed while holding a Value's lock does not deadlock the others", async () => {
    const out = await runNodeOk(`
      import { Process, Pipe, Value } from LIB;
      const v = Value('i', 0);
      const [here, there] = Pipe();
      const p = new Process({
        target: async (v, conn) => {
          v.acquireSync();
          v.value = 13;
          conn.send('holding');
          setInterval(() => {}, 1000);
        },
        args: [v, there],
      });
      p.start();
      await here.recv();
      p.kill();
      await p.join();
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      const got = await v.acquire({ timeout: 10000 });
      v.value += 1;
      const lock = v.getLock();
      const ownerDied = lock.ownerDied;
      v.release();
      await new Promise((r) => setImmediate(r));
      console.log(JSON.stringify({ got, value: v.value, ownerDied, warnings, code: p.exitCode }));
    `);
    expect(JSON.parse(out)).toEqual({ got: true, value: 14, ownerDied: true, warnings: ['MULTIPROC_OWNER_DIED'], code: -9 });
  });
});
