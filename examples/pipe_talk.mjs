// The seed's Pipe "talk" program, with a spawned `node` as the far end until Process lands:
// the child sends a dict, receives a set, and both sides print what they got.
import { spawn } from 'node:child_process';
import { Pipe, Connection } from 'multiproc';

if (process.argv[2] === 'child') {
  const pipe = new Connection(3);
  pipe.send({ name: 'Bob', spam: 42 });
  const reply = await pipe.recv();
  console.log('Talker got:', reply);
  pipe.close();
} else {
  const [parentEnd, childEnd] = Pipe();
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, 'child'], {
    stdio: ['inherit', 'inherit', 'inherit', childEnd.fileno()],
  });
  childEnd.close(); // the child has its own copy now
  console.log('Parent got:', await parentEnd.recv());
  parentEnd.send(new Set([...'spam'].map((x) => x + x)));
  await new Promise((resolve) => child.on('exit', resolve));
  parentEnd.close();
  console.log('Parent exit');
}
