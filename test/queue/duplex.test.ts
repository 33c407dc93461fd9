// RingDuplex (lib/ring-duplex.ts), the wire of pools and local managers, on its own: two ends in
// one process over the same two rings. Order with a full ring, blocking sends behind async ones,
// the doorbell, and the CPU hint that stops a spin on a shared CPU.
import { describe, expect, it } from 'vitest';
import { Doorbell, NOTHING, RingDuplex, ringQueues } from '../../lib/ring-duplex.js';
import { ringOf } from '../../lib/queues.js';
import { native } from '../../lib/native.js';

function pair(): { a: RingDuplex; b: RingDuplex; close(): void } {
  const [x, y] = ringQueues(0.05);
  const a = new RingDuplex(ringOf(x), ringOf(y), 'a');
  const b = new RingDuplex(ringOf(y), ringOf(x), 'b');
  return { a, b, close: () => [x, y].forEach((q) => q.close()) };
}

describe('RingDuplex', () => {
  it('keeps order when the ring fills: async sends wait in the outbox, a blocking send goes after them', async () => {
    const { a, b, close } = pair();
    const big = 'y'.repeat(20_000);
    for (let i = 0; i < 40; i++) a.send([i, big]); // 800 kB into a 256 KiB ring
    const got: number[] = [];
    const reader = (async () => {
      while (got.length < 41) {
        const m = b.tryRecv();
        if (m === NOTHING) await b.waitData(50);
        else got.push((m as [number])[0]);
      }
    })();
    // Blocks until the outbox has drained behind the reader (which runs on the loop): do it from
    // a timer so that the reader gets going first.
    await new Promise((r) => setTimeout(r, 5));
    await new Promise<void>((resolve) => {
      const drain = (): void => {
        try {
          a.sendSync([40, 'last'], 20, () => false, 20);
          resolve();
        } catch {
          setTimeout(drain, 5); // still full: let the reader take some
        }
      };
      drain();
    });
    await reader;
    expect(got).toEqual(Array.from({ length: 41 }, (_, i) => i));
    close();
  });

  it('the doorbell: armed by the reader, rung once by the next send, then quiet until armed again', async () => {
    const { a, b, close } = pair();
    let rings = 0;
    a.onDoorbell = () => rings++;
    a.send(1);
    expect(rings).toBe(0); // not armed
    expect(b.armDoorbell()).toBe(true); // a message is there already: take it first
    expect(b.tryRecv()).toBe(1);
    expect(b.armDoorbell()).toBe(false);
    a.send(2);
    a.send(3);
    expect(rings).toBe(1);
    b.disarmDoorbell();
    close();
  });

  it('a Doorbell wakes the loop that listens, also as a copy received from elsewhere', async () => {
    const bell = new Doorbell();
    let n = 0;
    const rang = new Promise<void>((resolve) => bell.listen(() => {
      n++;
      resolve();
    }));
    new Doorbell(native.dupFd(bell.fd)).ring();
    await rang;
    expect(n).toBe(1);
    bell.pause();
    bell.close();
  });

  it('sharesCpu: true only when the other end said it waits on the same CPU', () => {
    const { a, b, close } = pair();
    expect(a.sharesCpu(1)).toBe(false); // b has said nothing yet
    expect(b.sharesCpu(1)).toBe(true); // a waits on CPU 1
    expect(b.sharesCpu(0)).toBe(false);
    expect(a.sharesCpu(0)).toBe(true);
    expect(a.sharesCpu(-1)).toBe(false); // unknown CPU
    close();
  });
});
