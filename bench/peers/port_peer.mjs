// The worker side of bench/queue.mjs's worker_threads MessagePort rows (workerData.role):
//   echo                 post back every message
//   sink {warm, n}       count messages; post 'warm' after the first `warm`, 'done' after warm + n
import { parentPort, workerData } from 'node:worker_threads';

const { role, warm, n } = workerData;
if (role === 'echo') {
  parentPort.on('message', (m) => parentPort.postMessage(m));
} else if (role === 'sink') {
  let got = 0;
  parentPort.on('message', () => {
    got++;
    if (got === warm) parentPort.postMessage('warm');
    else if (got === warm + n) parentPort.postMessage('done');
  });
} else {
  throw new Error(`port_peer: unknown role ${role}`);
}
