// The seed's Pipe "talk" program: the child sends a dict and waits for the reply; the parent
// answers with a set made from what it got.
import { Process, Pipe } from 'multiproc';

async function talk(pipe) {
  pipe.send({ name: 'Bob', spam: 42 });
  const reply = await pipe.recv();
  console.log('Talker got:', reply);
}

const [parentEnd, childEnd] = Pipe();
const child = new Process({ target: talk, name: 'talk', args: [childEnd] });
child.start();
console.log('Parent got:', await parentEnd.recv());
parentEnd.send(new Set([...'spam'].map((x) => x + x)));
await child.join();
console.log('Parent exit');
