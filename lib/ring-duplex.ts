// Two shared-memory rings (lib/queue-ring.ts) used as one duplex message channel between two
// ends that each are the only producer of one ring and the only consumer of the other: a Pool and
// one of its workers (lib/pool-link.ts), a manager client and the server (lib/manager-client.ts).
//
// Neither end holds a ring's lock while it waits — waits are on the ring's words (waitData,
// waitRoom) and every put and get is a try — so one thread may mix blocking calls with async
// ones in flight: an async put waiting for room never holds up a blocking one behind a lock.
// Messages keep their order: a put that finds the ring full waits in an outbox, and later puts,
// blocking ones included, go after it.
import { Ring, RingTimeout, type Outgoing } from './queue-ring.js';

/** What tryRecv returns when no message is there. */
export const NOTHING: unique symbol = Symbol('nothing');

/** Bounds each wait for room while the fd side channel is full (a wait on HEAD would not end). */
const FD_RETRY_MS = 10;

function peerGone(what: string): Error {
  return Object.assign(new Error(`${what}: the other end is gone`), { code: 'EPIPE' });
}

export class RingDuplex {
  readonly #outbox: Outgoing[] = [];
  #flushing = false;

  constructor(
    readonly tx: Ring,
    readonly rx: Ring,
    readonly label: string,
  ) {}

  get closed(): boolean {
    return this.tx.closed || this.rx.closed;
  }

  /** Puts `msg` now if there is room, else after those waiting before it (on the loop). A TypeError for what cannot travel. */
  send(msg: unknown): void {
    const ring = this.tx;
    const m = ring.prepare(msg, this.label);
    if (this.#outbox.length === 0 && ring.tryPutNow(m)) return;
    this.#outbox.push(Ring.keep(m));
    if (!this.#flushing) void this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    const ring = this.tx;
    try {
      while (this.#outbox.length > 0) {
        const head = ring.headNow();
        if (ring.tryPutNow(this.#outbox[0]!)) {
          this.#outbox.shift();
          continue;
        }
        if ((await ring.waitRoom(head, FD_RETRY_MS)) === 3) break; // closed
      }
    } finally {
      this.#flushing = false;
      if (ring.closed) this.#dropOutbox();
    }
  }

  #dropOutbox(): void {
    for (const m of this.#outbox.splice(0)) Ring.discard(m);
  }

  /**
   * Puts `msg`, blocking while the ring is full (after the messages waiting in the outbox, which
   * go first). Every `sliceMs` of waiting asks `gone()`: true throws EPIPE, as does waiting past
   * `maxMs` (-1: no limit). The message is not sent then.
   */
  sendSync(msg: unknown, sliceMs: number, gone: () => boolean, maxMs = -1): void {
    const ring = this.tx;
    const start = performance.now();
    // tryPutNow leaves a message it could not put as it was, to try again.
    const put = (m: Outgoing): boolean => {
      for (;;) {
        const head = ring.headNow();
        if (ring.tryPutNow(m)) return true;
        if (ring.closed) return false;
        if (ring.waitRoomSync(head, sliceMs) !== 0 && (gone() || (maxMs >= 0 && performance.now() - start >= maxMs))) return false;
      }
    };
    while (this.#outbox.length > 0) {
      if (!put(this.#outbox[0]!)) throw peerGone(this.label);
      this.#outbox.shift();
    }
    // Synchronous from here on: the prepared message (the codec's scratch) stays valid.
    const m = ring.prepare(msg, this.label);
    if (!put(m)) {
      Ring.discard(m);
      throw peerGone(this.label);
    }
  }

  /** The next message if one is there, else NOTHING. */
  tryRecv(): unknown {
    const ring = this.rx;
    if (!ring.tryGetNow(this.label)) return NOTHING;
    const v = ring.value;
    ring.value = undefined;
    return v;
  }

  /** Waits until a message may be there: 0; 2 after `timeout` ms; 3 once closed. */
  waitData(timeout: number): Promise<number> {
    return this.rx.waitData(timeout);
  }

  /** The next message, blocking; every `sliceMs` of waiting asks `gone()`: true returns NOTHING. */
  recvSync(sliceMs: number, gone: () => boolean): unknown {
    for (;;) {
      const v = this.rx.getSync(sliceMs, this.label);
      if (!(v instanceof RingTimeout)) return v;
      if (gone()) return NOTHING;
    }
  }

  /** Drops what waits to be sent (the other end is gone). */
  abandon(): void {
    this.#dropOutbox();
  }
}
