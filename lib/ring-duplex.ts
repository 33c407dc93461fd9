// Two shared-memory rings (lib/queue-ring.ts) used as one duplex message channel between two
// ends that each are the only producer of one ring and the only consumer of the other: a Pool and
// one of its workers (lib/pool-link.ts), a manager client and the server (lib/manager-client.ts).
//
// Neither end holds a ring's lock while it waits — waits are on the ring's words (waitData,
// waitRoom) and every put and get is a try — so one thread may mix blocking calls with async
// ones in flight: an async put waiting for room never holds up a blocking one behind a lock.
// Messages keep their order: a put that finds the ring full waits in an outbox, and later puts,
// blocking ones included, go after it.
import { NOTHING, type Connection } from './connection.js';
import { Ring, RingTimeout, W, type Outgoing } from './queue-ring.js';
import { SimpleQueue } from './queues.js';
import { native, type NativeFdWatcher } from './native.js';
import { registerReducer } from './reduction.js';

/** What tryRecv returns when no message is there: the Connection's own (`_recvNow`). */
export { NOTHING };

/** Bounds each wait for room while the fd side channel is full (a wait on HEAD would not end). */
const FD_RETRY_MS = 10;

/** Each ring's size: messages up to half of it go inline, larger ones spill. */
const RING_BYTES = 256 << 10;

/** The two rings of a duplex as queue objects (which travel to another process), closed together if the second cannot be made. */
export function ringQueues(spinMs: number): [SimpleQueue, SimpleQueue] {
  const a = new SimpleQueue({ capacityBytes: RING_BYTES, spinMs });
  try {
    return [a, new SimpleQueue({ capacityBytes: RING_BYTES, spinMs })];
  } catch (e) {
    a.close();
    throw e;
  }
}

/** The error of a send to an end that is gone (as a socket's, EPIPE). */
export function peerGone(what: string): Error {
  return Object.assign(new Error(`${what}: the other end is gone`), { code: 'EPIPE' });
}

/**
 * Whether the other end is gone, by the socket beside the rings: after the first message nothing
 * but its EOF ever comes there, so a readable socket means EOF.
 */
export function socketEnded(conn: Connection): boolean {
  try {
    return conn.closed || conn.pollSync(0);
  } catch {
    return true;
  }
}

export class RingDuplex {
  readonly #outbox: Outgoing[] = [];
  #flushing = false;
  /**
   * Called after a put that found the other end's doorbell armed (it sleeps on something else
   * than the ring, its event loop): wake it there, e.g. with a message on a socket it reads.
   */
  onDoorbell: (() => void) | null = null;

  constructor(
    readonly tx: Ring,
    readonly rx: Ring,
    readonly label: string,
  ) {}

  /**
   * Arms our doorbell: the other end's next put will call its onDoorbell. Returns true when a
   * message is there already (put before the doorbell was armed, which nobody will ring for):
   * take it, and arm again once the ring is empty. Seq_cst both ways: a put either sees the
   * doorbell armed, or its commit is seen here.
   */
  armDoorbell(): boolean {
    const w = this.rx.w;
    Atomics.store(w, W.DOORBELL, 1);
    return Atomics.load(w, W.TAIL) !== Atomics.load(w, W.HEAD);
  }

  /**
   * Says that this end (the consumer of rx) waits or polls on `cpu` (native.getcpu()); returns
   * whether the other end last did so on the same CPU. Then a spin would only keep it from
   * running: two processes on one CPU take turns, so wait without spinning. (They share a CPU on
   * a busy machine, or when a wake-up put one on the other's CPU: while both spin there the
   * kernel sees every CPU busy and does not look for an idle one.)
   */
  sharesCpu(cpu: number): boolean {
    Atomics.store(this.rx.w, W.CONSUMER_CPU, cpu + 1);
    return cpu >= 0 && Atomics.load(this.tx.w, W.CONSUMER_CPU) === cpu + 1;
  }

  /** We read the ring without sleeping for a while: puts need not ring. */
  disarmDoorbell(): void {
    if (Atomics.load(this.rx.w, W.DOORBELL) !== 0) Atomics.store(this.rx.w, W.DOORBELL, 0);
  }

  #ring(): void {
    const w = this.tx.w;
    if (Atomics.load(w, W.DOORBELL) !== 0 && Atomics.exchange(w, W.DOORBELL, 0) === 1) this.onDoorbell?.();
  }

  /** Puts `msg` now if there is room, else after those waiting before it (on the loop). A TypeError for what cannot travel. */
  send(msg: unknown): void {
    const ring = this.tx;
    const m = ring.prepare(msg, this.label);
    if (this.#outbox.length === 0 && ring.tryPutNow(m)) {
      this.#ring();
      return;
    }
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
          this.#ring();
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
      this.#ring();
    }
    // Synchronous from here on: the prepared message (the codec's scratch) stays valid.
    const m = ring.prepare(msg, this.label);
    if (!put(m)) {
      Ring.discard(m);
      throw peerGone(this.label);
    }
    this.#ring();
  }

  /** The next message if one is there, else NOTHING. */
  tryRecv(): unknown {
    const ring = this.rx;
    if (!ring.tryGetNow(this.label)) return NOTHING;
    const v = ring.value;
    ring.value = undefined;
    return v;
  }

  /**
   * Waits until a message may be there: 0; 2 after `timeout` ms; 3 once closed. It spins on the
   * loop first (the ring's spin). (A Pool does not skip the spin when the other end shares this
   * CPU, as a manager client does: for a Pool's apply that measured slower, 11–23 µs p50 against 11.)
   */
  waitData(timeout: number): Promise<number> {
    return this.rx.waitData(timeout);
  }

  /**
   * The next message, blocking; every `sliceMs` of waiting asks `gone()`: true returns NOTHING.
   * It spins first (the ring's spin) unless `spin` is false (the caller found that the other end
   * shares this CPU: sharesCpu).
   */
  recvSync(sliceMs: number, gone: () => boolean, spin = true): unknown {
    for (;;) {
      const v = this.rx.getSync(sliceMs, this.label, spin);
      if (!(v instanceof RingTimeout)) return v;
      if (gone()) return NOTHING;
    }
  }

  /** Drops what waits to be sent (the other end is gone). */
  abandon(): void {
    this.#dropOutbox();
  }
}

const bellCloser = new FinalizationRegistry<number>((fd) => {
  try {
    native.closeFd(fd);
  } catch {
    // gone with the environment
  }
});

/**
 * An eventfd that another process rings (a RingDuplex's onDoorbell) and this one watches on its
 * event loop. Not a socket or a pipe: their wake-ups are "sync" ones, after which the kernel runs
 * the woken process on the ringer's CPU — both then spin on one CPU while the other idles.
 * It travels to other processes as its fd.
 */
export class Doorbell {
  #fd: number;
  #watcher: NativeFdWatcher | null = null;
  #onRing: (() => void) | null = null;
  /** Held here: the watcher holds its callback weakly while stopped. */
  readonly #onReady = (): void => {
    if (this.#fd >= 0 && native.eventfdDrain(this.#fd)) this.#onRing?.();
  };

  constructor(fd: number = native.eventfd()) {
    this.#fd = fd;
    bellCloser.register(this, fd, this);
  }

  get fd(): number {
    return this.#fd;
  }

  ring(): void {
    if (this.#fd >= 0) native.eventfdSignal(this.#fd);
  }

  /** Calls `onRing` on the loop each time it rang, while listening (which keeps the loop alive). */
  listen(onRing: () => void): void {
    if (this.#fd < 0) return;
    this.#onRing = onRing;
    this.#watcher ??= new native.FdWatcher(this.#fd, this.#onReady);
    this.#watcher.start(true, false);
  }

  /** Stops listening (and keeping the loop alive). */
  pause(): void {
    this.#watcher?.stop();
  }

  close(): void {
    if (this.#fd < 0) return;
    this.#watcher?.close();
    this.#watcher = null;
    bellCloser.unregister(this);
    native.closeFd(this.#fd);
    this.#fd = -1;
  }
}

registerReducer<Doorbell, { fd: number }>({
  type: 'Doorbell',
  cls: Doorbell,
  reduce: (d, ctx) => {
    if (d.fd < 0) throw new Error('a closed Doorbell cannot be sent');
    return { fd: ctx.addFd(d.fd) };
  },
  rebuild: (s, ctx) => new Doorbell(ctx.fd(s.fd)),
});
