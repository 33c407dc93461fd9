// The child side of the child_process.fork() IPC peer in bench/pipe.mjs (the parent picks the
// serialization). It ends when the IPC channel closes, so it cannot outlive the parent.
//   echo                   send back every message
//   send PAYLOAD TOTAL     after one "go" message, send TOTAL payloads (int|obj|b64|b64k)
const OBJ = { id: 1, op: 'get', args: [1, 2, 3] };
const PAYLOADS = { int: 1, obj: OBJ, b64: Buffer.alloc(64, 120), b64k: Buffer.alloc(65536, 120) };
const [role, payloadName, totalArg] = process.argv.slice(2);

process.on('disconnect', () => process.exit(0));

if (role === 'echo') {
  process.on('message', (m) => process.send(m));
} else if (role === 'send') {
  const payload = PAYLOADS[payloadName];
  const total = Number(totalArg);
  process.once('message', async () => {
    for (let i = 0; i < total; i++) {
      // process.send returns false once more than 128 KiB wait in user space (Node's own
      // threshold): then wait until this message is written, as the multiproc peer does.
      if (!process.send(payload)) {
        if (++i < total) await new Promise((r) => process.send(payload, r));
      }
    }
  });
} else {
  throw new Error(`fork_peer: unknown role ${role}`);
}
