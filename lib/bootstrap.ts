// The first module a child runs (spawned by lib/context.ts): it reads its start message
// from the control socket (fd 3), takes the identity it was given, and runs the target with
// Python's exit codes: 0 on return, 1 on a throw (stack on stderr), n on process.exit(n).
import os from 'node:os';
import { native } from './native.js';
import { Connection, Pipe } from './connection.js';
import { EOFError } from './errors.js';
import { adoptIdentity, type StartMessage } from './process.js';
import { describeTarget, entryUrl, explainTargetError, loadTarget } from './target.js';
import { CHILD_FLAG } from './context.js';
// Every type that can arrive in args registers how it is rebuilt when its module loads.
import './index.js';

const at = process.argv.indexOf(CHILD_FLAG);
const parentPid = Number(process.argv[at + 1]);
const warm = process.argv.includes('--multiproc-warm');
const SIGKILL = os.constants.signals.SIGKILL;

// Our grandchildren must not inherit the control socket: its EOF is our parent's sentinel.
native.setCloexec(3, true);
const ctrl = new Connection(3);

// A warm process waits idle for a target; it must never outlive the parent that keeps it.
if (warm) {
  if (!native.setParentDeathSignal(SIGKILL, parentPid)) process.exit(0);
  await rehearse();
  ctrl.send('ready');
}

/**
 * Runs the start path once on dummy data — decoding a start message that carries a Connection,
 * compiling a function target, encoding a send — so that the real start meets warm code.
 */
async function rehearse(): Promise<void> {
  const [a, b] = Pipe();
  const [c, d] = Pipe();
  const target = describeTarget((conn: Connection) => conn.send({ ok: 1 }), 'rehearsal');
  a.send({ op: 'start', target, args: [d], name: 'rehearsal', daemon: false, identity: [0], parent: { name: '', pid: 0 }, entry: entryUrl() });
  d.close();
  const m = b.recvSync() as StartMessage;
  const fn = await loadTarget(m.target, m.entry);
  await fn(...m.args);
  c.recvSync();
  for (const x of [a, b, c, m.args[0] as Connection]) x.close();
}

let message: StartMessage;
try {
  message = (warm ? ctrl.recvSync() : await ctrl.recv()) as StartMessage;
} catch (e) {
  if (e instanceof EOFError) process.exit(0); // the parent went away before starting us
  throw e;
}

// Daemons die with their parent, also when it is SIGKILLed; others run on, as in Python.
// The getppid() check inside closes the race with a parent that is already gone.
if (message.daemon) {
  if (!native.setParentDeathSignal(SIGKILL, parentPid)) process.exit(1);
} else if (warm) {
  native.setParentDeathSignal(0, parentPid);
}
adoptIdentity(message);

const what = `Process ${message.name}`;
try {
  const fn = await loadTarget(message.target, message.entry);
  await fn(...message.args); // then the loop drains and the exit code is 0 (or process.exitCode)
} catch (err) {
  const e = explainTargetError(err, message.target, what);
  process.stderr.write(`${what}:\n${e instanceof Error ? (e.stack ?? String(e)) : String(e)}\n`);
  process.exit(1);
}
