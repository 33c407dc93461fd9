// The addon in worker threads: per-environment state, and an ending worker (pending receives,
// read-ahead, queued output) leaves nothing behind and crashes nothing.
import { describe, expect, it } from 'vitest';
import { runNodeOk } from '../helpers/child.js';

describe('worker threads', () => {
  it('Connections work in workers, and workers that end with open ones do not crash the process', async () => {
    const out = await runNodeOk(`
      import { Worker } from 'node:worker_threads';
      import { readdirSync } from 'node:fs';
      const fds = () => readdirSync('/proc/self/fd').length;
      const code = \`
        const { Pipe } = await import('multiproc');
        const { parentPort } = await import('node:worker_threads');
        const [a, b] = Pipe();
        const pending = b.recv();
        a.send({ hi: 'from worker' });
        const got = await pending;
        const [c, d] = Pipe();
        c.send('left unread');
        d.recv(); // still pending when the worker ends
        const big = Buffer.alloc(1 << 20);
        for (let i = 0; i < 3; i++) a.sendBytes(big); // queued output when the worker ends
        parentPort.postMessage(got);
        if (process.argv.includes('exit')) process.exit(0);
      \`;
      const got = [];
      let before;
      for (let i = -1; i < 6; i++) {
        if (i === 0) before = fds(); // after one worker: Node keeps a few fds from the first
        const w = new Worker(code, { eval: true, type: 'module', argv: i % 2 ? ['exit'] : [] });
        const m = await new Promise((res, rej) => { w.on('message', res); w.on('error', rej); });
        if (i >= 0) got.push(m);
        if (i % 2 === 0) await w.terminate();
        else await new Promise((r) => w.on('exit', r));
      }
      console.log(JSON.stringify({ got: got.map((g) => g.hi), leaked: fds() - before }));
    `);
    const r = JSON.parse(out);
    expect(r.got).toEqual(Array(6).fill('from worker'));
    expect(r.leaked).toBeLessThanOrEqual(0);
  });
});
