// The seed's run_proc program: start one child process, wait for it, and show both pids.
import { Process } from 'multiproc';

function runProc(name) {
  console.log(`Run child process ${name} (${process.pid})...`);
}

console.log(`Parent process ${process.pid}.`);
const p = new Process({ target: runProc, args: ['test'] });
console.log('Process will start.');
p.start();
await p.join();
console.log('Process end.');
