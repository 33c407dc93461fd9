// The ring under Queue, SimpleQueue and JoinableQueue (lib/queues.ts): one shared segment with a
// header and a byte ring of variable-length encoded messages; a put and a get each commit with one store.
//
// Layout (int32 word indices; each group on its own 64-byte line, so that a producer and a
// consumer on two CPUs pass as few lines back and forth as they can):
//   [0] magic  [1] capacity in bytes (a power of two)  [2] maxsize (0: none)
//   [16..19] producer lock (a robust LockWord of LOCK_WORDS words: owner tid, token, parked, wake sequence)
//   [32] TAIL  [33] its parked waiters: the line a waiting consumer spins on, written once a put
//   [48] PUT_COUNT  [49] P_JSEQ  [50] P_JEND  [51] FD_TAG  [52] the HEAD value a producer waits on
//   [64..67] consumer lock
//   [80] HEAD  [81] its parked waiters: the line a waiting producer spins on, written once a get
//   [96] GET_COUNT  [97] C_JSEQ  [98] C_JEND  [99] the TAIL value a consumer waits on
//   [112] TASKS_DONE (JoinableQueue)  [113] its parked waiters
//   [120] DOORBELL: 1 while the consumer of a duplex's ring sleeps on something else than the
//         ring (lib/ring-duplex.ts): the put that sees it takes it back to 0 and rings
//   [121] CONSUMER_CPU: 1 + the CPU a duplex's consumer last waited or polled on (0: unknown)
// Only the holder of the consumer lock waits on TAIL, only the producer lock's on HEAD, and it
// says which value it waits on (in its own line: the other side reads it only when it sees a
// parked waiter): only the commit that moves the word off that value wakes it, so while a woken
// consumer is on its way a fast producer does not pay a futex wake per put.
// Ring bytes start at HEADER_BYTES. TAIL and HEAD are byte positions modulo 2^32 (the offset is
// pos & (capacity - 1)); PUT_COUNT and GET_COUNT count messages, so qsize = PUT_COUNT - GET_COUNT.
//
// A record is 8-aligned: [u32 length | flags][u32 seq, or fd tag if FDS][payload, padded to 8].
// A record that does not fit before the end leaves a WRAP marker and starts the next lap. Records
// of up to capacity/2 bytes always fit an empty ring; larger messages SPILL: their bytes go to a
// memfd of their own, which travels on the fd side channel (native/ring.cc) like a handle's fd,
// and the record holds only their length.
//
// Crash safety. Producers serialize on the producer lock, consumers on the consumer lock (both
// robust: a dead holder's lock is taken over). A put writes its record past TAIL, where nobody
// reads, and publishes it with one store of TAIL; a get reads at HEAD and frees it with one store
// of HEAD. A process killed before that store leaves nothing visible (a put) or the message in
// place (a get); the next holder writes over the garbage or reads the message again. The counts
// move just before their position, guarded by a journal so that the next holder can undo a count
// whose position never moved (see repairCursor).
import { readSync, writeSync } from 'node:fs';
import { setImmediate as immediate } from 'node:timers/promises';
import { native } from './native.js';
import { bufferMessageSize, decode, decodeRange, encodeScratch, writeBufferMessage, type FdSource } from './codec.js';
import { ACQUIRED, LOCK_WORDS, OWNER_DIED, TIMED_OUT, LockWord, remaining } from './synchronize.js';

export const MAGIC = 0x31515251; // "QRQ1"
export const W = {
  MAGIC: 0, CAP: 1, MAXSIZE: 2,
  P_LOCK: 16,
  TAIL: 32, TAIL_WAITERS: 33,
  PUT_COUNT: 48, P_JSEQ: 49, P_JEND: 50, FD_TAG: 51, HEAD_WAITED: 52,
  C_LOCK: 64,
  HEAD: 80, HEAD_WAITERS: 81,
  GET_COUNT: 96, C_JSEQ: 97, C_JEND: 98, TAIL_WAITED: 99,
  TASKS_DONE: 112, DONE_WAITERS: 113,
  DOORBELL: 120, CONSUMER_CPU: 121,
} as const;
export const HEADER_BYTES = 512;
if (W.P_LOCK + LOCK_WORDS > W.TAIL || W.C_LOCK + LOCK_WORDS > W.HEAD || W.CONSUMER_CPU >= HEADER_BYTES >> 2) throw new Error('queue-ring: a word outgrew its line');
const DATA_WORD = HEADER_BYTES >> 2;

export const WRAP = -1;
export const FLAG_FDS = 1 << 30;
export const FLAG_SPILL = 1 << 29;
export const LEN_MASK = FLAG_SPILL - 1;

export const MIN_CAPACITY = 1024;
export const MAX_CAPACITY = 1 << 30;
export const DEFAULT_CAPACITY = 1 << 20;
/** Fds one message may carry (the kernel's SCM_MAX_FD, less one for a spilled message's memfd). */
export const MAX_FDS = 252;

const INT_MAX = 0x7fffffff;
/** A non-blocking call still waits this long for another process's put or get in progress (ms). */
const NOWAIT_LOCK_MS = 0.05;
/** How long an async put waits at most before it tries the full fd channel again (ms). */
const FD_RETRY_MS = 10;
/** tryPut / tryGet results other than a word index to wait on. */
const DONE = 0;
const FD_FULL = -1;
/** A native wait's result when it was cancelled (close()). */
const CANCELLED = 3;

/** What a wait reported that the caller turns into its own error. */
export class RingTimeout {
  /** lock: another process's put/get held on; room: the ring (or maxsize) stayed full; fds: the fd channel did; data: nothing came. */
  constructor(readonly phase: 'lock' | 'room' | 'fds' | 'data') {}
}

/** The three fds of a ring in this process, closed by close() or when the Ring is collected. */
interface Fds {
  seg: number;
  tx: number;
  rx: number;
}

const closer = new FinalizationRegistry<Fds>((f) => closeFds(f));

function closeFds(f: Fds): void {
  for (const fd of [f.seg, f.tx, f.rx]) {
    try {
      native.closeFd(fd);
    } catch {
      // gone with the environment's teardown
    }
  }
}

/** The message being put: its bytes (or, spilled, the memfd holding them), and the fds of its handles. */
export interface Outgoing {
  /** `Class.method` of the put, for messages. */
  label: string;
  bytes: Uint8Array;
  /** A plain Buffer written straight into the ring (bytes then unused), or null. */
  direct: Buffer | null;
  size: number;
  fds: number[];
  memfd: number;
}

/** Where decode takes the fds of the message being got. */
class Incoming implements FdSource {
  fds: number[] = [];
  next = 0;
  take(n: number): number[] {
    if (this.next + n > this.fds.length) throw new Error(`codec: a queue message announces ${n} file descriptor(s) that did not arrive`);
    const out = this.fds.slice(this.next, this.next + n);
    this.next += n;
    return out;
  }
  close(fd: number): void {
    native.closeFd(fd);
  }
  /** Closes what decode did not take. */
  rest(): void {
    for (let i = this.next; i < this.fds.length; i++) native.closeFd(this.fds[i]!);
    this.fds = [];
    this.next = 0;
  }
}

const EMPTY = Buffer.alloc(0);
const outgoing: Outgoing = { label: '', bytes: EMPTY, direct: null, size: 0, fds: [], memfd: -1 };

function roundCapacity(bytes: number): number {
  let cap = MIN_CAPACITY;
  while (cap < bytes) cap *= 2;
  return cap;
}

/**
 * One ring as seen from this process. Its owner (a Queue) validates arguments and turns the
 * outcomes into the API's errors; `label` names the calling method in codec errors.
 */
export class Ring {
  readonly buf: ArrayBuffer;
  readonly w: Int32Array;
  readonly u8: Uint8Array;
  readonly bytes: Buffer;
  readonly cap: number;
  readonly mask: number;
  readonly maxsize: number;
  readonly maxInline: number;
  readonly producer: LockWord;
  readonly consumer: LockWord;
  spinMs: number;
  spinUs: number;
  /** The spin of the next wait (µs), between spinUs/16 and spinUs (see #adaptSpin). */
  #spinUs: number;
  #fds: Fds | null;
  /** Whether close() (or collection) closes the fds: not for a ring borrowed from another thread of this process. */
  readonly #owned: boolean;
  /** Async waits of this object in flight, cancelled by close(). */
  readonly #pending = new Set<number>();

  // Producer-side caches: HEAD and GET_COUNT as last seen (never ahead of the real ones, so a
  // room check that passes on them is right), valid while TAIL and PUT_COUNT are where we left them.
  #headSeen = 0;
  #getSeen = 0;
  #tailLeft = -1;
  #putLeft = -1;
  // Consumer side: TAIL as last seen, valid while HEAD and GET_COUNT are where we left them.
  #tailSeen = 0;
  #headLeft = -1;
  #getLeft = -1;

  /** The word value to wait on, set by tryPut/tryGet when they return a word index. */
  waitValue = 0;
  /** The message tryGet took. */
  value: unknown;
  readonly #incoming = new Incoming();

  private constructor(fds: Fds, buf: ArrayBuffer, spinMs: number, owned = true) {
    this.#fds = fds;
    this.#owned = owned;
    this.buf = buf;
    this.w = new Int32Array(buf);
    this.u8 = new Uint8Array(buf);
    this.bytes = Buffer.from(buf);
    this.cap = this.w[W.CAP]!;
    this.mask = this.cap - 1;
    this.maxsize = this.w[W.MAXSIZE]!;
    this.maxInline = this.cap / 2 - 8;
    this.spinMs = spinMs;
    this.spinUs = spinMs * 1000;
    this.#spinUs = this.spinUs;
    // A LockWord wants a Segment; this mapping is one in all it uses (its words and buffer).
    const seg = { fd: fds.seg, size: buf.byteLength, buffer: buf, words: () => this.w };
    this.producer = new LockWord({ seg, index: W.P_LOCK }, spinMs);
    this.consumer = new LockWord({ seg, index: W.C_LOCK }, spinMs);
    if (owned) closer.register(this, fds, this);
  }

  /** A new ring of at least `capacityBytes` bytes (rounded up to a power of two). */
  static create(capacityBytes: number, maxsize: number, spinMs: number): Ring {
    const cap = roundCapacity(capacityBytes);
    const size = HEADER_BYTES + cap;
    const seg = native.shmCreateAnon(size);
    let pair: [number, number] | undefined;
    let buf: ArrayBuffer;
    try {
      buf = native.shmMap(seg, size);
      pair = native.fdPair();
    } catch (e) {
      native.closeFd(seg);
      throw e;
    }
    const w = new Int32Array(buf, 0, DATA_WORD);
    w[W.CAP] = cap;
    w[W.MAXSIZE] = maxsize;
    // Journals at rest: the last "put" was seq -1, ending where TAIL is.
    w[W.P_JSEQ] = -1;
    w[W.C_JSEQ] = -1;
    Atomics.store(w, W.MAGIC, MAGIC);
    return new Ring({ seg, tx: pair[0], rx: pair[1] }, buf, spinMs);
  }

  /**
   * The ring whose three fds arrived from another process; the Ring owns them. With `owned`
   * false they are another thread's of this process (the fd table is shared), which closes them
   * once this thread is done: this Ring never does.
   */
  static adopt(seg: number, tx: number, rx: number, spinMs: number, owned = true): Ring {
    const fds = { seg, tx, rx };
    try {
      const size = native.shmSize(seg);
      if (size < HEADER_BYTES + MIN_CAPACITY) throw new Error(`the segment (${size} bytes) is too small`);
      const buf = native.shmMap(seg, size);
      const w = new Int32Array(buf, 0, DATA_WORD);
      if (Atomics.load(w, W.MAGIC) !== MAGIC || HEADER_BYTES + w[W.CAP]! !== size) throw new Error('the segment does not hold a queue');
      return new Ring(fds, buf, spinMs, owned);
    } catch (e) {
      if (owned) closeFds(fds);
      throw new Error(`a Queue that arrived from another process cannot be mapped here: ${(e as Error).message}`, { cause: e });
    }
  }

  get closed(): boolean {
    return this.#fds === null;
  }

  /** Sets how long waits spin before they park (ms); the locks keep theirs. */
  setSpin(ms: number): void {
    this.spinMs = ms;
    this.spinUs = ms * 1000;
    this.#spinUs = this.spinUs;
  }

  /** The fds to send to another process (it gets its own duplicates). */
  get fds(): Fds {
    return this.#fds!;
  }

  /** Closes this process's fds; async waits in flight end (they see `closed` and reject). */
  close(): void {
    const fds = this.#fds;
    if (!fds) return;
    this.#fds = null;
    if (this.#owned) {
      closer.unregister(this);
      closeFds(fds);
    }
    for (const id of this.#pending) native.cancelWait(id);
  }

  // ---- counts ----

  qsize(): number {
    // GET_COUNT first: read the other way round, a get between the two loads could show -1.
    const g = Atomics.load(this.w, W.GET_COUNT);
    return Math.max(0, (Atomics.load(this.w, W.PUT_COUNT) - g) | 0);
  }

  empty(): boolean {
    return Atomics.load(this.w, W.HEAD) === Atomics.load(this.w, W.TAIL);
  }

  full(): boolean {
    return this.maxsize > 0 && this.qsize() >= this.maxsize;
  }

  // ---- put ----

  /**
   * Encodes `value` for a put, spilled if large: a shared object over the shared encode scratch,
   * valid until the next prepare or encode (Ring.keep makes it the caller's).
   */
  prepare(value: unknown, label: string): Outgoing {
    const out = outgoing;
    const fds = out.fds;
    if (fds.length !== 0) fds.length = 0;
    out.label = label;
    out.memfd = -1;
    const direct = bufferMessageSize(value);
    if (direct > 0 && direct <= this.maxInline) {
      // A Buffer goes into the ring in one copy, without the encode scratch.
      out.bytes = EMPTY;
      out.direct = value as Buffer;
      out.size = direct;
      return out;
    }
    out.direct = null;
    const bytes = encodeScratch(value, label, fds);
    if (fds.length > MAX_FDS) throw new RangeError(`${label}: a message may carry at most ${MAX_FDS} handles' file descriptors; this one has ${fds.length}`);
    out.bytes = bytes;
    out.size = bytes.length;
    out.memfd = bytes.length > this.maxInline ? spill(bytes) : -1;
    return out;
  }

  /** The same message, owned: for a put that has to wait while other encodes reuse the scratch. */
  static keep(m: Outgoing): Outgoing {
    return { label: m.label, bytes: m.memfd >= 0 || m.direct ? EMPTY : Buffer.from(m.bytes), direct: m.direct && Buffer.from(m.direct), size: m.size, fds: [...m.fds], memfd: m.memfd };
  }

  static discard(m: Outgoing): void {
    if (m.memfd >= 0) native.closeFd(m.memfd);
    m.memfd = -1;
    m.direct = null; // the caller's Buffer is not kept alive by the shared Outgoing
  }

  /**
   * Puts, blocking: true, or a RingTimeout. timeout: -1 none, 0 do not wait (for room; a put in
   * progress elsewhere still gets NOWAIT_LOCK_MS to finish), else ms.
   */
  putSync(m: Outgoing, timeout: number): true | RingTimeout {
    const start = timeout > 0 ? performance.now() : 0;
    try {
      if (!this.#lockSync(PRODUCER, timeout, start)) return new RingTimeout('lock');
      try {
        for (;;) {
          const left = remaining(timeout, start);
          const at = this.#tryPut(m, left);
          if (at === DONE) return true;
          if (at === FD_FULL) return new RingTimeout('fds');
          if (left === 0) return new RingTimeout('room');
          if (this.#waitSync(at, this.waitValue, left) === TIMED_OUT && remaining(timeout, start) === 0) return new RingTimeout('room');
        }
      } finally {
        this.producer.release();
      }
    } finally {
      Ring.discard(m);
    }
  }

  /** One put without waiting, for put()'s fast path: true once put (and `m` discarded), false if it has to wait. */
  tryPutNow(m: Outgoing): boolean {
    if (!this.producer.tryClaim()) return false;
    let done = false;
    try {
      done = this.#tryPut(m, 0) === DONE;
      return done;
    } catch (e) {
      done = true;
      throw e;
    } finally {
      this.producer.release();
      if (done) Ring.discard(m);
    }
  }

  /** Puts, waiting on waiter threads (never the event loop's thread); `m` must be owned (Ring.keep). */
  async put(m: Outgoing, timeout: number, closedError: () => Error): Promise<true | RingTimeout> {
    const start = timeout > 0 ? performance.now() : 0;
    let held = false;
    try {
      held = this.producer.tryClaim() || (await this.#lockAsync(PRODUCER, remaining(timeout, start), closedError));
      if (!held) return new RingTimeout('lock');
      for (;;) {
        const left = remaining(timeout, start);
        const at = this.#tryPut(m, 0);
        if (at === DONE) return true;
        if (left === 0) return new RingTimeout(at === FD_FULL ? 'fds' : 'room');
        const index = at === FD_FULL ? W.HEAD : at;
        const value = at === FD_FULL ? Atomics.load(this.w, W.HEAD) : this.waitValue;
        const slice = at === FD_FULL ? (left < 0 ? FD_RETRY_MS : Math.min(left, FD_RETRY_MS)) : left;
        await this.#waitWord(index, value, slice);
        if (this.closed) throw closedError();
      }
    } finally {
      if (held) this.producer.release();
      Ring.discard(m);
    }
  }

  /**
   * Under the producer lock: writes `m` if there is room (DONE), or returns the word to wait on
   * (its value in waitValue), or FD_FULL when the fd channel stayed full for `fdTimeout` ms.
   */
  #tryPut(m: Outgoing, fdTimeout: number): number {
    const w = this.w;
    const T = w[W.TAIL]!;
    const N = w[W.PUT_COUNT]!;
    const spilled = m.memfd >= 0;
    const len = spilled ? 8 : m.size;
    const need = 8 + ((len + 7) & ~7);
    const off = T & this.mask;
    const contiguous = this.cap - off;
    const total = need <= contiguous ? need : contiguous + need;
    if (T !== this.#tailLeft || N !== this.#putLeft) {
      // Someone else put since our last put: our view of HEAD may be from another lap.
      this.#headSeen = Atomics.load(w, W.HEAD);
      this.#getSeen = Atomics.load(w, W.GET_COUNT);
    }
    if (!this.#room(T, N, total)) {
      // HEAD before GET_COUNT: a get moves GET_COUNT and then HEAD, so a wait on the HEAD read
      // here ends at the get that made room.
      const h = Atomics.load(w, W.HEAD);
      this.#headSeen = h;
      this.#getSeen = Atomics.load(w, W.GET_COUNT);
      if (!this.#room(T, N, total)) {
        this.#tailLeft = T;
        this.#putLeft = N;
        this.waitValue = h;
        return W.HEAD;
      }
    }
    // The fds go first, tagged: a producer killed after sending them and before committing
    // leaves a datagram that the consumer drops by its older tag.
    let tag = N;
    let flags = 0;
    if (spilled || m.fds.length > 0) {
      tag = (w[W.FD_TAG]! + 1) | 0;
      Atomics.store(w, W.FD_TAG, tag);
      const fds = spilled ? [m.memfd, ...m.fds] : m.fds;
      if (!sendFds(m.label, this.#fds!.tx, tag, fds, fdTimeout)) {
        this.#tailLeft = T;
        this.#putLeft = N;
        return FD_FULL;
      }
      flags = FLAG_FDS | (spilled ? FLAG_SPILL : 0);
    }
    let start = T;
    let at = off;
    if (need > contiguous) {
      w[DATA_WORD + (off >> 2)] = WRAP;
      start = (T + contiguous) | 0;
      at = 0;
    }
    const word = DATA_WORD + (at >> 2);
    if (spilled) {
      const n = m.size;
      w[word + 2] = n % 0x100000000;
      w[word + 3] = Math.floor(n / 0x100000000);
    } else {
      if (m.direct) writeBufferMessage(m.direct, this.u8, HEADER_BYTES + at + 8);
      else this.u8.set(m.bytes, HEADER_BYTES + at + 8);
    }
    w[word] = len | flags;
    w[word + 1] = tag;
    const end = (start + need) | 0;
    // The journal, then the count, then the commit (see repairCursor for why this order). Plain
    // stores keep their order (V8 does not reorder stores; a killed process's executed stores all
    // land), and the seq_cst commit orders them before itself for readers (release).
    w[W.P_JSEQ] = N;
    w[W.P_JEND] = end;
    w[W.PUT_COUNT] = (N + 1) | 0;
    Atomics.store(w, W.TAIL, end);
    this.#tailLeft = end;
    this.#putLeft = (N + 1) | 0;
    if (Atomics.load(w, W.TAIL_WAITERS) > 0 && Atomics.load(w, W.TAIL_WAITED) === T) native.futexWake(this.buf, W.TAIL, INT_MAX);
    return DONE;
  }

  #room(T: number, N: number, total: number): boolean {
    if (total > this.cap - ((T - this.#headSeen) >>> 0)) return false;
    return this.maxsize <= 0 || ((N - this.#getSeen) | 0) < this.maxsize;
  }

  // ---- get ----

  /** Gets, blocking: the message, or a RingTimeout. timeout as for putSync. */
  /** `spin`: false parks at once (this wait only), without a spin. */
  getSync(timeout: number, label: string, spin = true): unknown {
    const start = timeout > 0 ? performance.now() : 0;
    if (!this.#lockSync(CONSUMER, timeout, start)) return new RingTimeout('lock');
    try {
      for (;;) {
        const at = this.#tryGet(label);
        if (at === DONE) return this.#take();
        const left = remaining(timeout, start);
        if (left === 0) return new RingTimeout('data');
        this.#waitSync(at, this.waitValue, left, spin);
      }
    } finally {
      this.consumer.release();
    }
  }

  /** One try without waiting, for get()'s fast path: true (the message in `value`, to be taken at once) or false. */
  tryGetNow(label: string): boolean {
    if (!this.consumer.tryClaim()) return false;
    try {
      return this.#tryGet(label) === DONE;
    } finally {
      this.consumer.release();
    }
  }

  /** Gets, waiting on waiter threads: the message, or a RingTimeout. */
  async get(timeout: number, label: string, closedError: () => Error): Promise<unknown> {
    const start = timeout > 0 ? performance.now() : 0;
    let held = false;
    try {
      held = this.consumer.tryClaim() || (await this.#lockAsync(CONSUMER, remaining(timeout, start), closedError));
      if (!held) return new RingTimeout('lock');
      for (;;) {
        const at = this.#tryGet(label);
        if (at === DONE) return this.#take();
        const left = remaining(timeout, start);
        if (left === 0) return new RingTimeout('data');
        await this.#waitWord(at, this.waitValue, left);
        if (this.closed) throw closedError();
      }
    } finally {
      if (held) this.consumer.release();
    }
  }

  /** HEAD now: read it before a tryPutNow that may fail, to waitRoom() on. */
  headNow(): number {
    return Atomics.load(this.w, W.HEAD);
  }

  /**
   * For a ring whose one producer puts with tryPutNow: waits, holding no lock, until HEAD moves
   * off `head` (a get made room: 0), for `timeout` ms at most (2), or until close() (3).
   */
  waitRoom(head: number, timeout: number): Promise<number> {
    if (Atomics.load(this.w, W.HEAD) !== head) return Promise.resolve(ACQUIRED);
    if (this.closed) return Promise.resolve(CANCELLED);
    return this.#waitWord(W.HEAD, head, timeout);
  }

  /** waitRoom's blocking twin: 0 once HEAD moved off `head`, 2 after `timeout` ms. */
  waitRoomSync(head: number, timeout: number): number {
    if (Atomics.load(this.w, W.HEAD) !== head) return ACQUIRED;
    return this.#waitSync(W.HEAD, head, timeout);
  }

  /**
   * For a ring whose one consumer takes with tryGetNow: waits, holding no lock, until a message
   * may be there (0), for `timeout` ms at most (2; -1: no limit), or until close() (3). Spins on
   * the loop first for the ring's spin, as get() does.
   */
  waitData(timeout: number): Promise<number> {
    const w = this.w;
    const tail = Atomics.load(w, W.TAIL);
    if (tail !== Atomics.load(w, W.HEAD)) return Promise.resolve(ACQUIRED);
    if (this.closed) return Promise.resolve(CANCELLED);
    return this.#waitWord(W.TAIL, tail, timeout);
  }

  /** Under the consumer lock: takes the message at HEAD into `value` (DONE), or returns the word to wait on. `label` names the get in errors. */
  #tryGet(label: string): number {
    const w = this.w;
    const H = w[W.HEAD]!;
    const G = w[W.GET_COUNT]!;
    if (H !== this.#headLeft || G !== this.#getLeft || H === this.#tailSeen) {
      // Empty as far as we know, or someone else got since our last get (our TAIL may be from another lap).
      const t = Atomics.load(w, W.TAIL);
      this.#tailSeen = t;
      this.#headLeft = H;
      this.#getLeft = G;
      if (t === H) {
        this.waitValue = t;
        return W.TAIL;
      }
    }
    let off = H & this.mask;
    let start = H;
    let hdr = w[DATA_WORD + (off >> 2)]!;
    if (hdr === WRAP) {
      start = (H + this.cap - off) | 0;
      off = 0;
      hdr = w[DATA_WORD]!;
    }
    const word = DATA_WORD + (off >> 2);
    const len = hdr & LEN_MASK;
    const tag = w[word + 1]!;
    const end = (start + 8 + ((len + 7) & ~7)) | 0;
    const distance = (end - H) >>> 0;
    if (len > this.maxInline || distance > ((this.#tailSeen - H) >>> 0) || (!(hdr & FLAG_FDS) && tag !== G)) {
      throw new Error(`${label}: the queue's shared memory is corrupt (record at ${off}: header ${hdr}, tag ${tag}, expected message ${G}); it cannot be used any more`);
    }
    let err: unknown;
    let value: unknown;
    const inc = this.#incoming;
    try {
      if (hdr & FLAG_FDS) {
        const fds = native.fdPeek(this.#fds!.rx, tag >>> 0);
        if (fds === null) throw new Error(`${label}: the file descriptors of message ${G} are missing from the queue's fd channel; the message is dropped`);
        inc.fds = fds;
        inc.next = 0;
      }
      if (hdr & FLAG_SPILL) {
        const size = (w[word + 2]! >>> 0) + (w[word + 3]! >>> 0) * 0x100000000;
        const [memfd] = inc.take(1);
        let bytes: Buffer;
        try {
          bytes = unspill(memfd!, size);
        } finally {
          native.closeFd(memfd!);
        }
        value = decode(bytes, inc);
      } else {
        const at = HEADER_BYTES + off + 8;
        value = decodeRange(this.bytes, at, at + len, hdr & FLAG_FDS ? inc : undefined);
      }
    } catch (e) {
      // Not decodable here: the message is consumed anyway (as Python's get does), or it would
      // block the queue for every consumer.
      err = e;
    } finally {
      if (hdr & FLAG_FDS) inc.rest();
    }
    w[W.C_JSEQ] = G;
    w[W.C_JEND] = end;
    w[W.GET_COUNT] = (G + 1) | 0;
    Atomics.store(w, W.HEAD, end);
    this.#headLeft = end;
    this.#getLeft = (G + 1) | 0;
    // After the commit: a consumer killed before this line leaves the datagram to be dropped by tag.
    if (hdr & FLAG_FDS) native.fdDrop(this.#fds!.rx);
    if (Atomics.load(w, W.HEAD_WAITERS) > 0 && Atomics.load(w, W.HEAD_WAITED) === H) native.futexWake(this.buf, W.HEAD, INT_MAX);
    if (err !== undefined) throw err;
    this.value = value;
    return DONE;
  }

  /** The message tryGet took; the ring keeps no reference to it. */
  #take(): unknown {
    const v = this.value;
    this.value = undefined;
    return v;
  }

  // ---- JoinableQueue ----

  /** Marks one task done; false if that would be more than were put. */
  taskDone(): boolean {
    const w = this.w;
    for (;;) {
      const d = Atomics.load(w, W.TASKS_DONE);
      const n = Atomics.load(w, W.PUT_COUNT);
      if (((n - d) | 0) <= 0) return false;
      if (Atomics.compareExchange(w, W.TASKS_DONE, d, (d + 1) | 0) !== d) continue;
      if (((n - d - 1) | 0) === 0 && Atomics.load(w, W.DONE_WAITERS) > 0) native.futexWake(this.buf, W.TASKS_DONE, INT_MAX);
      return true;
    }
  }

  /** Waits until every task put is done: true, or false on timeout. */
  joinSync(timeout: number): boolean {
    const start = timeout > 0 ? performance.now() : 0;
    for (;;) {
      const d = Atomics.load(this.w, W.TASKS_DONE);
      const slice = this.#joinSlice(d, timeout, start);
      if (typeof slice === 'boolean') return slice;
      if (native.waitWhile(this.buf, W.TASKS_DONE, d, slice, this.#spinUs) === TIMED_OUT && Atomics.load(this.w, W.TASKS_DONE) === d) this.#probeProducerSync();
    }
  }

  async join(timeout: number, closedError: () => Error): Promise<boolean> {
    const start = timeout > 0 ? performance.now() : 0;
    for (;;) {
      const d = Atomics.load(this.w, W.TASKS_DONE);
      const slice = this.#joinSlice(d, timeout, start);
      if (typeof slice === 'boolean') return slice;
      const r = await this.#waitWord(W.TASKS_DONE, d, slice);
      if (this.closed) throw closedError();
      if (r === TIMED_OUT && Atomics.load(this.w, W.TASKS_DONE) === d) await this.#probeProducer(closedError);
    }
  }

  /** With `d` tasks done: true when that is all of them, false when the time is up, else how long to wait (ms). */
  #joinSlice(d: number, timeout: number, start: number): boolean | number {
    if (((Atomics.load(this.w, W.PUT_COUNT) - d) | 0) <= 0) return true;
    const left = remaining(timeout, start);
    if (left === 0) return false;
    return left < 0 || left > JOIN_PROBE_MS ? JOIN_PROBE_MS : left;
  }

  /**
   * A joiner that saw no progress for a while: if a producer died in the middle of a put, its
   * count may be one too high until someone takes the producer lock over, so take it.
   */
  #probeProducerSync(): void {
    if (this.producer.heldHere()) return;
    if (this.#lockSync(PRODUCER, PROBE_LOCK_MS, performance.now())) this.producer.release();
  }

  async #probeProducer(closedError: () => Error): Promise<void> {
    if (this.producer.heldHere()) return;
    if (this.producer.tryClaim() || (await this.#lockAsync(PRODUCER, PROBE_LOCK_MS, closedError))) this.producer.release();
  }

  // ---- the locks, and recovery after a holder died ----

  /**
   * Takes a side's lock, blocking: false if it stayed held (for timeout 0: NOWAIT_LOCK_MS, for a
   * put or get in progress elsewhere to finish). Repairs what a dead holder left.
   */
  #lockSync(side: Side, timeout: number, start: number): boolean {
    const word = side === PRODUCER ? this.producer : this.consumer;
    if (word.tryClaim()) return true;
    const own = word.heldHere();
    if (own && timeout !== 0) {
      const op = side === PRODUCER ? 'put' : 'get';
      throw new Error(`a ${op}() of this queue is waiting in this thread (an await is pending); a blocking ${op} here would wait for it forever`);
    }
    const r = own ? TIMED_OUT : word.waitSync(timeout === 0 ? NOWAIT_LOCK_MS : remaining(timeout, start));
    if (r === OWNER_DIED) this.#repair(side);
    return r === ACQUIRED || r === OWNER_DIED;
  }

  /** The contended part of taking a side's lock, on a waiter thread (cancelled by close()). */
  async #lockAsync(side: Side, timeout: number, closedError: () => Error): Promise<boolean> {
    const word = side === PRODUCER ? this.producer : this.consumer;
    let id = 0;
    const r = await word.wait(timeout, (i) => {
      id = i;
      this.#pending.add(i);
    });
    this.#pending.delete(id);
    const held = r === ACQUIRED || r === OWNER_DIED;
    if (r === OWNER_DIED) this.#repair(side);
    if (this.closed) {
      if (held) word.release();
      throw closedError();
    }
    return held;
  }

  #repair(side: Side): void {
    const w = this.w;
    if (side === PRODUCER) {
      repairCursor(w, W.TAIL, W.PUT_COUNT, W.P_JSEQ, W.P_JEND);
      // Only the producer lock's holder waits on HEAD: waiters counted now died with the holder.
      Atomics.store(w, W.HEAD_WAITERS, 0);
      this.#tailLeft = -1;
      this.#putLeft = -1;
    } else {
      repairCursor(w, W.HEAD, W.GET_COUNT, W.C_JSEQ, W.C_JEND);
      Atomics.store(w, W.TAIL_WAITERS, 0);
      this.#headLeft = -1;
      this.#getLeft = -1;
    }
  }

  // ---- async waits ----

  /** Waits, blocking, while word `index` holds `value` (spinning first): 0 changed, 2 timed out. */
  #waitSync(index: number, value: number, timeout: number, spin = true): number {
    // Said before the wait counts us (seq_cst): a waker that sees us counted sees this too.
    this.#sayWaited(index, value);
    if (!spin) return native.waitWhile(this.buf, index, value, timeout, 0);
    const t = performance.now();
    const r = native.waitWhile(this.buf, index, value, timeout, this.#spinUs);
    this.#adaptSpin(performance.now() - t);
    return r;
  }

  /**
   * Waits while word `index` holds `value`, never blocking the event loop: 0 changed, 2 timed
   * out, 3 cancelled. First a spin on the loop (each turn runs timers and I/O; an item that comes
   * within it skips the hand-off to a waiter thread and back), then a wait on a waiter thread.
   */
  async #waitWord(index: number, value: number, timeout: number): Promise<number> {
    const t = performance.now();
    const w = this.w;
    if (this.#spinUs > 0 && timeout !== 0) {
      const until = t + (timeout < 0 ? this.#spinUs / 1000 : Math.min(timeout, this.#spinUs / 1000));
      while (Atomics.load(w, index) === value && performance.now() < until) {
        await immediate();
        if (this.closed) return CANCELLED;
      }
      if (Atomics.load(w, index) !== value) {
        this.#adaptSpin(performance.now() - t);
        return ACQUIRED;
      }
    }
    this.#sayWaited(index, value);
    const left = timeout < 0 ? -1 : Math.max(0, timeout - (performance.now() - t));
    return new Promise<number>((resolve) => {
      const id = native.waitAsync(2, this.buf, index, value, 0, 0, left, 0, (r) => {
        this.#pending.delete(id);
        this.#adaptSpin(performance.now() - t);
        resolve(r);
      });
      this.#pending.add(id);
    });
  }

  #sayWaited(index: number, value: number): void {
    if (index === W.TAIL) Atomics.store(this.w, W.TAIL_WAITED, value);
    else if (index === W.HEAD) Atomics.store(this.w, W.HEAD_WAITED, value);
  }

  /**
   * The spin adapts as a Connection's does: a wait that ended within the full spin means spinning
   * catches the other side, so spin fully; one that took longer halves it, down to spinMs/16 (a
   * slow peer, or one that shares our CPU and cannot go on while we spin).
   */
  /** Whether waits adapt their spin (see #adaptSpin); false: always the full spin. */
  adaptive = true;

  #adaptSpin(waitedMs: number): void {
    if (!this.adaptive) return;
    const full = this.spinUs;
    this.#spinUs = waitedMs * 1000 <= full ? full : Math.max(full / 16, this.#spinUs / 2);
  }
}

const JOIN_PROBE_MS = 1000;
const PRODUCER = 0;
const CONSUMER = 1;
type Side = typeof PRODUCER | typeof CONSUMER;
/** Spilled messages up to this size are read into one buffer kept for the next (see unspill). */
const KEEP_SPILL_BUFFER = 16 << 20;
let spillBuffer = Buffer.alloc(0);
const PROBE_LOCK_MS = 250;

/**
 * Puts a cursor's count right after its holder died. The holder writes, in this order: JSEQ :=
 * count, JEND := new position, count := count + 1, position := JEND (the commit). So:
 * JSEQ == count: it died before moving the count — nothing to undo; JSEQ == count - 1 and
 * position != JEND: it moved the count but not the position — undo the count; otherwise the
 * journal is at rest. Then the journal is set at rest for the next holder.
 */
export function repairCursor(w: Int32Array, pos: number, count: number, jseq: number, jend: number): void {
  const c = w[count]!;
  if (((c - w[jseq]!) | 0) === 1 && w[jend] !== w[pos]) Atomics.store(w, count, (c - 1) | 0);
  Atomics.store(w, jseq, (w[count]! - 1) | 0);
  Atomics.store(w, jend, w[pos]!);
}

/** fdSend, with its errors said in terms of the item being put. */
function sendFds(label: string, sock: number, tag: number, fds: number[], timeout: number): boolean {
  try {
    return native.fdSend(sock, tag >>> 0, fds, timeout);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EBADF'
      ? 'a handle in the item was closed before the put could send it'
      : code === 'ETOOMANYREFS' || code === 'EMFILE' || code === 'ENFILE'
        ? 'more file descriptors wait in the queue than this process may have open (RLIMIT_NOFILE); get() items first, or raise the limit'
        : (e as Error).message;
    throw Object.assign(new Error(`${label}: the queue cannot take this item's file descriptors: ${why}`, { cause: e }), { code });
  }
}

/** A memfd holding `bytes`: how a message too large for the ring travels. */
function spill(bytes: Uint8Array): number {
  const fd = native.shmCreateAnon(bytes.length);
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, done);
  } catch (e) {
    native.closeFd(fd);
    throw e;
  }
  return fd;
}

/**
 * The bytes of a spilled message, read into a buffer this process keeps for the next one (decode
 * copies everything out of its input): fresh memory would cost a page fault per 4 KiB each time.
 */
function unspill(fd: number, size: number): Buffer {
  let out: Buffer;
  if (size > KEEP_SPILL_BUFFER) {
    out = Buffer.allocUnsafeSlow(size);
  } else {
    if (spillBuffer.length < size) spillBuffer = Buffer.allocUnsafeSlow(Math.max(size, 2 * spillBuffer.length));
    out = spillBuffer.subarray(0, size);
  }
  for (let done = 0; done < size; ) {
    const n = readSync(fd, out, done, size - done, done);
    if (n === 0) throw new Error(`a spilled queue message is ${done} bytes long, not the ${size} announced`);
    done += n;
  }
  return out;
}
