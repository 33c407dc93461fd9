// Python's Manager example: a child process changes a shared dict and list through their
// proxies; the parent sees the changes. Then a remote manager: a server on TCP with an authkey,
// used by a client process that knows only its address and key.
import { Manager, Process, SyncManager } from 'multiproc';

async function f(d, l) {
  await d.set(1, '1');
  await d.set('2', 2);
  await d.set(0.25, null);
  await l.reverse();
}

const manager = await Manager();
try {
  const d = await manager.dict();
  const l = await manager.list([...Array(10).keys()]);
  const p = new Process({ target: f, args: [d, l] });
  p.start();
  await p.join();
  console.log(await d.copy());
  console.log(await l.copy());
} finally {
  await manager.shutdown(); // (or `await using manager = ...` where Node supports it)
}

// A remote manager: this process serves a shared queue; a client process connects with the key.
class QueueManager extends SyncManager {}
const jobs = [];
QueueManager.register('getJobs', () => ({ push: (j) => jobs.push(j), list: () => jobs }));
const server = new QueueManager({ address: ['127.0.0.1', 0], authkey: 'abracadabra' }).getServer();

async function client(address) {
  const { SyncManager } = await import('multiproc');
  class QueueManager extends SyncManager {}
  QueueManager.register('getJobs');
  const m = new QueueManager({ address, authkey: 'abracadabra' });
  await m.connect();
  const jobs = await m.getJobs();
  for (const j of ['wash', 'dry', 'fold']) await jobs.push(`${j} (from pid ${process.pid})`);
  await m.shutdown(); // asks the server to stop
}

const p = new Process({ target: client, args: [server.address] });
p.start();
await server.serveForever();
await p.join();
console.log('jobs served:', jobs);
