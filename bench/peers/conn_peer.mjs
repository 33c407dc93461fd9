// The echo peer of bench/manager.mjs's Listener/Client round trip: connects to the Listener at
// HOST:PORT with Client and sends back every byte message, until EOF (the bench closed its end).
//   node conn_peer.mjs HOST PORT
const { Client } = await import(new URL('../../dist/index.js', import.meta.url).href);
const { native } = await import(new URL('../../dist/native.js', import.meta.url).href);

native.setParentDeathSignal(9, process.ppid); // go with the bench, however it ends
const c = await Client([process.argv[2], Number(process.argv[3])]);
for (;;) {
  let m;
  try {
    m = await c.recvBytes();
  } catch {
    break;
  }
  c.sendBytes(m);
}
c.close();
