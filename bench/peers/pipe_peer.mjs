// The child side of bench/pipe.mjs and bench/pipe-cost.mjs: a multiproc Connection on fd 3 that
// echoes or sends. It ends at EOF (the parent closed its end) or EPIPE (the parent is gone).
//   node pipe_peer.mjs ROLE SPIN_MS [ARG...]     (SPIN_MS "default": the library's default)
//   echo-sync | echo-async               echo messages (recvSync / await recv)
//   echo-sync-bytes | echo-async-bytes   echo bytes (recvBytesSync / await recvBytes)
//   echo-work-bytes WORK_US              recvBytesSync, busy for WORK_US µs, then echo
//   send PAYLOAD TOTAL                   after one "go" message, send TOTAL payloads (obj|b64|b64k)
import { setImmediate as immediate } from 'node:timers/promises';

const { Connection, EOFError } = await import(new URL('../../dist/index.js', import.meta.url).href);

const [role, spinArg, ...rest] = process.argv.slice(2);
const c = new Connection(3, spinArg === 'default' ? {} : { spinMs: Number(spinArg) });

const OBJ = { id: 1, op: 'get', args: [1, 2, 3] };
const PAYLOADS = { obj: OBJ, b64: Buffer.alloc(64, 120), b64k: Buffer.alloc(65536, 120) };

const gone = (e) => e instanceof EOFError || e?.code === 'EPIPE' || e?.code === 'ECONNRESET' || /closed/.test(e?.message ?? '');

/** Waits until the kernel took everything queued (the sender's back-pressure; the event loop flushes). */
async function drained(limit) {
  while (c.bufferedAmount > limit) await immediate();
}

try {
  switch (role) {
    case 'echo-sync':
      for (;;) c.send(c.recvSync());
    case 'echo-sync-bytes':
      for (;;) c.sendBytes(c.recvBytesSync());
    case 'echo-async':
      for (;;) c.send(await c.recv());
    case 'echo-async-bytes':
      for (;;) c.sendBytes(await c.recvBytes());
    case 'echo-work-bytes': {
      const workNs = BigInt(Math.round(Number(rest[0]) * 1000));
      for (;;) {
        const b = c.recvBytesSync();
        const until = process.hrtime.bigint() + workNs;
        while (process.hrtime.bigint() < until);
        c.sendBytes(b);
      }
    }
    case 'send': {
      const payload = PAYLOADS[rest[0]];
      const total = Number(rest[1]);
      const bytes = rest[0] !== 'obj';
      c.recvSync(); // go
      // Same back-pressure as the fork peer: past 128 KiB queued in user space, wait for the kernel.
      for (let i = 0; i < total; i++) {
        if (bytes) c.sendBytes(payload);
        else c.send(payload);
        if (c.bufferedAmount > 131072) await drained(0);
      }
      await drained(0);
      c.recvSync(); // the parent closes when it has counted all: EOF ends us
      break;
    }
    default:
      throw new Error(`pipe_peer: unknown role ${role}`);
  }
} catch (e) {
  if (!gone(e)) {
    process.stderr.write(`pipe_peer ${role}: ${e?.stack ?? e}\n`);
    process.exitCode = 1;
  }
}
c.close();
