// The seed's Pipe "send" program: a child sends a list through one end of a Pipe and closes
// it; the parent receives it from the other end.
import { Process, Pipe } from 'multiproc';

function send(pipe) {
  pipe.send(['spam', 42, 'egg']);
  pipe.close();
}

const [con1, con2] = Pipe();
const sender = new Process({ target: send, name: 'send', args: [con1] });
sender.start();
console.log('con2 got:', await con2.recv()); // received from send
con2.close();
await sender.join();
