// Connection and Pipe (API.md, Connections): messages and bytes over a pipe or socket fd,
// framed as Python's multiprocessing.connection frames them.
import { availableParallelism } from 'node:os';
import { native, type NativeChannel } from './native.js';
import { decode, decodeRange, encodeScratch, type FdSource } from './codec.js';
import { BufferTooShort, EOFError } from './errors.js';
import { registerReducer } from './reduction.js';
import { kWaitable, type WaitHandle } from './waitable.js';

/** Default limit on one message: a longer length prefix fails the connection before any allocation. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 ** 3;

export interface ConnectionOptions {
  /** Whether this end receives (default true). */
  readable?: boolean;
  /** Whether this end sends (default true). */
  writable?: boolean;
  /** Longest message accepted or sent, in bytes (default 1 GiB). */
  maxMessageBytes?: number;
  /**
   * How long a blocking `…Sync` receive may spin before it parks in the kernel, in ms (default
   * 0.05; 0 on a single CPU). The spin adapts between spinMs/16 and spinMs to how the peer answers.
   */
  spinMs?: number;
}

/** Options of `Pipe`: those of `Connection` that apply to both ends. */
export type PipeOptions = Pick<ConnectionOptions, 'maxMessageBytes' | 'spinMs'>;

// Spinning only pays when the peer can run meanwhile: on one CPU it would only delay it.
/** @internal */
export const DEFAULT_SPIN_MS = availableParallelism() > 1 ? 0.05 : 0;

// Messages are received into one scratch buffer and decoded from there (the codec copies out
// everything it keeps): no Buffer is made per message, and a fresh Buffer per large message cost
// more in page faults than the rest of the receive. Messages larger than the scratch arrive in a
// Buffer of their own, and the scratch grows to take the next such one, up to KEEP_RECV_SCRATCH.
const KEEP_RECV_SCRATCH = 4 * 1024 * 1024;
let recvScratch = Buffer.allocUnsafeSlow(64 * 1024);
// A decode that itself receives (a handle's rebuild) must not overwrite the bytes being decoded.
let scratchBusy = false;

/** What `_recvNow()` returns when no whole message is there yet. */
export const NOTHING: unique symbol = Symbol('nothing yet');

// The fds of the message being sent (reused: send is synchronous).
const sendFds: number[] = [];
let sendPreparedImpl: (c: Connection, bytes: Uint8Array, fds: number[]) => void;
let spinOf: (c: Connection) => number;
let setSpinImpl: (c: Connection, ms: number) => void;

type Waiter = {
  /** Tries to complete with what is readable now; true when settled. */
  take(): boolean;
  fail(err: unknown): void;
};

function timeoutArg(ms: number | null | undefined, what: string): number {
  if (ms === undefined || ms === null || ms === Infinity) return -1;
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw new TypeError(`${what}: the timeout must be a number of milliseconds, got ${String(ms)}`);
  return Math.max(0, ms);
}

function asBytes(buf: ArrayBufferView | ArrayBuffer, what: string): Uint8Array {
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if ((buf as unknown) instanceof ArrayBuffer || (buf as unknown) instanceof SharedArrayBuffer) return new Uint8Array(buf as ArrayBuffer);
  throw new TypeError(`${what}: expected a Buffer, TypedArray, DataView or ArrayBuffer, got ${typeof buf}`);
}

/**
 * One end of a pipe or socket carrying messages (structured clones) and byte strings.
 * Python's `multiprocessing.connection.Connection`.
 */
export class Connection {
  #ch: NativeChannel | null;
  readonly #fd: number;
  readonly #readable: boolean;
  readonly #writable: boolean;
  readonly #maxMessageBytes: number;
  #spinMs: number;
  readonly #waiters: Waiter[] = [];
  #watching = false;
  #kicked = false;
  /** The standing waiter of `_serveEach` (it never settles while the connection lasts). */
  #server: Waiter | null = null;

  /** Adopts `fd` (an open pipe or socket); `close()` closes it. Python's `Connection(handle)`. */
  constructor(fd: number, options: ConnectionOptions = {}) {
    const { readable = true, writable = true, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES, spinMs = DEFAULT_SPIN_MS } = options;
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`Connection: fd must be an open file descriptor (a non-negative integer), got ${String(fd)}`);
    if (!readable && !writable) throw new TypeError('Connection: at least one of readable and writable must be true');
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 0) throw new TypeError(`Connection: maxMessageBytes must be a non-negative integer, got ${String(maxMessageBytes)}`);
    if (typeof spinMs !== 'number' || !(spinMs >= 0)) throw new TypeError(`Connection: spinMs must be a number of milliseconds >= 0, got ${String(spinMs)}`);
    try {
      this.#ch = new native.Channel(fd, readable, writable, maxMessageBytes, this.#drain);
    } catch (e) {
      throw new TypeError(`Connection: cannot adopt fd ${fd}: ${(e as Error).message}`, { cause: e });
    }
    this.#ch.setSpin(spinMs * 1000);
    this.#fd = fd;
    this.#readable = readable;
    this.#writable = writable;
    this.#maxMessageBytes = maxMessageBytes;
    this.#spinMs = spinMs;
  }

  get closed(): boolean { return this.#ch === null; }
  get readable(): boolean { return this.#readable; }
  get writable(): boolean { return this.#writable; }

  /** The fd, for `child_process.spawn`'s `stdio` or `new Connection(fd)` elsewhere. */
  fileno(): number {
    return this.#open('fileno').fileno();
  }

  /**
   * Sends a structured clone of `obj`. Never blocks: what the kernel does not take now is queued
   * and written in order. Connections (and other handles) inside `obj` travel too (their fds by
   * SCM_RIGHTS, so this end must be a socket).
   */
  send(obj: unknown): void {
    const ch = this.#open('send', 'w');
    const fds = sendFds;
    fds.length = 0;
    const bytes = encodeScratch(obj, 'Connection.send', fds);
    this.#write(ch, 'send', bytes, 0, bytes.length, fds.length ? fds : undefined);
  }

  /** Sends `size` bytes of `buf` from byte `offset` as one message (Python's `send_bytes`). */
  sendBytes(buf: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): void {
    const ch = this.#open('sendBytes', 'w');
    const bytes = asBytes(buf, 'Connection.sendBytes');
    const n = bytes.byteLength;
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`Connection.sendBytes: offset must be a non-negative integer, got ${offset}`);
    if (n < offset) throw new RangeError(`Connection.sendBytes: buffer length ${n} < offset ${offset}`);
    if (size === undefined) size = n - offset;
    else if (!Number.isInteger(size) || size < 0) throw new RangeError(`Connection.sendBytes: size must be a non-negative integer, got ${size}`);
    else if (offset + size > n) throw new RangeError(`Connection.sendBytes: buffer length ${n} < offset + size (${offset + size})`);
    this.#write(ch, 'sendBytes', bytes, offset, size);
  }

  /** Receives the next message, blocking the thread until one arrives. */
  recvSync(): unknown {
    const ch = this.#open('recvSync', 'r');
    try {
      return this.#readMessage('recvSync', ch, -1, false);
    } finally {
      this.#afterSync();
    }
  }

  /** Receives the next message. */
  recv(): Promise<unknown> {
    return this.#receive(() => {
      const ch = this.#open('recv', 'r');
      return {
        read: (first) => {
          const m = this.#readMessage('recv', ch, 0, first);
          return m === NOTHING ? null : { m };
        },
        settle: (r) => r.m,
      };
    });
  }

  /** Receives the next message as bytes, blocking the thread. A longer message than `maxLength` closes the connection and throws. */
  recvBytesSync(maxLength?: number): Buffer {
    const ch = this.#open('recvBytesSync', 'r');
    const max = this.#maxLengthArg('recvBytesSync', maxLength);
    try {
      return this.#settleBytes('recvBytesSync', this.#call('recvBytesSync', () => ch.recv(-1, max))) as Buffer;
    } finally {
      this.#afterSync();
    }
  }

  /** Receives the next message as bytes. */
  recvBytes(maxLength?: number): Promise<Buffer> {
    return this.#receive(() => {
      const ch = this.#open('recvBytes', 'r');
      const max = this.#maxLengthArg('recvBytes', maxLength);
      return {
        read: (first) => this.#call('recvBytes', () => ch.recv(0, max, first)),
        settle: (r) => this.#settleBytes('recvBytes', r),
      };
    });
  }

  /** Receives the next message into `buf` at byte `offset`, blocking the thread; returns its size. */
  recvBytesIntoSync(buf: ArrayBufferView | ArrayBuffer, offset = 0): number {
    const ch = this.#open('recvBytesIntoSync', 'r');
    const bytes = this.#intoArgs('recvBytesIntoSync', buf, offset);
    try {
      return this.#settleInto('recvBytesIntoSync', this.#call('recvBytesIntoSync', () => ch.recvInto(bytes, offset, -1)), bytes, offset);
    } finally {
      this.#afterSync();
    }
  }

  /** Receives the next message into `buf` at byte `offset`; resolves to its size. */
  recvBytesInto(buf: ArrayBufferView | ArrayBuffer, offset = 0): Promise<number> {
    return this.#receive(() => {
      const ch = this.#open('recvBytesInto', 'r');
      const bytes = this.#intoArgs('recvBytesInto', buf, offset);
      return {
        read: (first) => this.#call('recvBytesInto', () => ch.recvInto(bytes, offset, 0, first)),
        settle: (r) => this.#settleInto('recvBytesInto', r, bytes, offset),
      };
    });
  }

  /**
   * @internal For a server that reads its connections itself (the manager's): calls `onMessage`
   * from the loop with each message as it arrives, in order, until EOF, a failed read or close(),
   * which call `onEnd` once. Meanwhile `_recvNow()` may read too (a server's busy-poll).
   */
  _serveEach(onMessage: (m: unknown) => void, onEnd: (e: unknown) => void): void {
    const ch = this.#open('recv', 'r');
    if (this.#waiters.length) throw new Error('Connection._serveEach: receives are already pending on this connection');
    let ended = false;
    const end = (e: unknown): void => {
      if (ended) return;
      ended = true;
      if (this.#server === w) this.#server = null;
      onEnd(e);
    };
    const w: Waiter = {
      take: () => {
        try {
          for (;;) {
            const m = this.#readMessage('recv', ch, 0, false);
            if (m === NOTHING) return false;
            onMessage(m);
            if (this.#server !== w) return true; // ended (or closed) while handling
          }
        } catch (e) {
          end(e);
          return true;
        }
      },
      fail: end,
    };
    this.#server = w;
    this.#waiters.push(w);
    this.#watch(true);
    // What was read ahead with an earlier receive (a handshake) is buffered here already: the fd
    // may not turn readable for it.
    this.#afterSync();
  }

  /**
   * @internal A receive that never waits: the next message, or `NOTHING`. Throws at EOF (EOFError)
   * or on a failed read. Only with no receives pending, or only `_serveEach`'s.
   */
  _recvNow(): unknown {
    const ch = this.#open('recv', 'r');
    const ws = this.#waiters;
    if (ws.length > 1 || (ws.length === 1 && ws[0] !== this.#server)) return NOTHING;
    const m = this.#readMessage('recv', ch, 0, false);
    // Read ahead past this message, the fd may no longer look readable: a standing waiter must still see the rest.
    if (m !== NOTHING) this.#afterSync();
    return m;
  }

  /** Whether a message (or EOF) is ready, waiting up to `timeoutMs` (`null`/`Infinity`: forever), blocking the thread. */
  pollSync(timeoutMs: number | null = 0): boolean {
    const ch = this.#open('pollSync', 'r');
    const t = timeoutArg(timeoutMs, 'Connection.pollSync');
    try {
      return this.#call('pollSync', () => ch.poll(t));
    } finally {
      this.#afterSync();
    }
  }

  /** Whether a message (or EOF) is ready, waiting up to `timeoutMs` (`null`/`Infinity`: forever). */
  poll(timeoutMs: number | null = 0): Promise<boolean> {
    let t: number;
    try {
      const ch = this.#open('poll', 'r');
      t = timeoutArg(timeoutMs, 'Connection.poll');
      if (this.#waiters.length === 0) {
        const ready = this.#call('poll', () => ch.poll(0));
        if (ready || t === 0) return Promise.resolve(ready);
      } else if (t === 0) {
        return Promise.resolve(false); // what is readable now belongs to the receives queued before
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cancel = this.#watchReadable(
        () => {
          clearTimeout(timer);
          resolve(true);
        },
        (e) => {
          clearTimeout(timer);
          reject(e);
        },
      );
      if (t >= 0) {
        timer = setTimeout(() => {
          cancel();
          resolve(false);
        }, t);
      }
    });
  }

  /** Closes this end; messages already sent are still delivered. Pending receives reject. Idempotent. */
  close(): void {
    const ch = this.#ch;
    if (!ch) return;
    this.#ch = null;
    this.#watching = false;
    ch.close();
    const err = this.#closedError('recv');
    const ws = this.#waiters.splice(0);
    // _serveEach's waiter is out of the queue while it reads (a close from what it called).
    if (this.#server && !ws.includes(this.#server)) ws.push(this.#server);
    for (const w of ws) w.fail(err);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Bytes sent but not yet taken by the kernel (they are written as the peer reads). */
  get bufferedAmount(): number {
    return this.#ch ? this.#ch.pending() : 0;
  }

  // ---- internals ----

  #open(method: string, mode?: 'r' | 'w'): NativeChannel {
    const ch = this.#ch;
    if (!ch) throw this.#closedError(method);
    if (mode === 'r' && !this.#readable) {
      throw new Error(`Connection.${method}: this end (fd ${this.#fd}) is write-only: for Pipe(false) receive on the first connection returned, send on the second`);
    }
    if (mode === 'w' && !this.#writable) {
      throw new Error(`Connection.${method}: this end (fd ${this.#fd}) is read-only: for Pipe(false) send on the second connection returned, receive on the first`);
    }
    return ch;
  }

  #closedError(method: string): Error {
    return new Error(`Connection.${method}: the connection (fd ${this.#fd}) is closed; open a new one with Pipe() or Client()`);
  }

  #maxLengthArg(method: string, maxLength: number | undefined): number | undefined {
    if (maxLength === undefined) return undefined;
    if (!Number.isInteger(maxLength) || maxLength < 0) throw new RangeError(`Connection.${method}: maxLength must be a non-negative integer, got ${maxLength}`);
    return maxLength;
  }

  #intoArgs(method: string, buf: ArrayBufferView | ArrayBuffer, offset: number): Uint8Array {
    const bytes = asBytes(buf, `Connection.${method}`);
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`Connection.${method}: offset must be a non-negative integer, got ${offset}`);
    if (offset > bytes.byteLength) throw new RangeError(`Connection.${method}: offset ${offset} is past the end of the ${bytes.byteLength}-byte buffer`);
    return bytes;
  }

  #write(ch: NativeChannel, method: string, bytes: Uint8Array, offset: number, size: number, fds?: number[]): void {
    if (size > this.#maxMessageBytes) {
      throw new RangeError(`Connection.${method}: a message of ${size} bytes exceeds maxMessageBytes (${this.#maxMessageBytes}) of this connection; raise the limit on both ends or send it in parts`);
    }
    this.#call(method, () => ch.send(bytes, offset, size, fds));
  }

  readonly #takeFds: FdSource = {
    take: (n) => this.#open('recv').takeFds(n),
    close: (fd) => native.closeFd(fd),
  };

  static {
    spinOf = (c) => c.#spinMs;
    setSpinImpl = (c, ms) => {
      if (!c.#ch) return;
      c.#spinMs = ms;
      c.#ch.setSpin(ms * 1000);
    };
    sendPreparedImpl = (c, bytes, fds) => c.#write(c.#open('send', 'w'), 'send', bytes, 0, bytes.length, fds.length ? fds : undefined);
  }

  /** The limit on one message's size, in bytes. */
  get maxMessageBytes(): number {
    return this.#maxMessageBytes;
  }

  /** @internal For wait(): ready when a message or EOF is there. */
  [kWaitable](): WaitHandle {
    return {
      ready: () => this.#ch === null || this.#call('poll', () => this.#ch!.poll(0)),
      watch: (cb) => this.#watchReadable(cb, cb),
    };
  }

  /**
   * Calls `ready` once a message (or EOF) is there for a waiter queued now, leaving it unread,
   * or `fail` if the connection fails or closes first. Returns a canceller.
   */
  #watchReadable(ready: () => void, fail: (e: unknown) => void): () => void {
    if (!this.#ch) {
      queueMicrotask(() => fail(this.#closedError('poll')));
      return () => {};
    }
    const entry: Waiter = {
      take: () => {
        try {
          if (!this.#call('poll', () => this.#ch!.poll(0))) return false;
        } catch (e) {
          queueMicrotask(() => fail(e));
          return true;
        }
        queueMicrotask(ready);
        return true;
      },
      fail: (e) => queueMicrotask(() => fail(e)),
    };
    this.#waiters.push(entry);
    this.#watch(true);
    return () => {
      const i = this.#waiters.indexOf(entry);
      if (i >= 0) this.#waiters.splice(i, 1);
      if (this.#waiters.length === 0) this.#watch(false);
    };
  }

  /** Runs a native call, turning its errors into messages that name the connection; a broken stream closes it. */
  #call<T>(method: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ERR_MULTIPROC_BAD_FRAME') {
        this.close();
        throw new Error(`Connection.${method}: bad message length: ${err.message}; the connection (fd ${this.#fd}) is now closed`, { cause: e });
      }
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') {
        throw Object.assign(new Error(`Connection.${method}: the other end of the connection (fd ${this.#fd}) is closed (${err.code})`, { cause: e }), { code: err.code });
      }
      if (err.code === 'ERR_MULTIPROC_CLOSED') throw this.#closedError(method);
      if (err.code === 'ERR_MULTIPROC_FD_PASSING') {
        throw new TypeError(`Connection.${method}: ${err.message}: a Connection inside a message needs a socket to travel; send it over a duplex Pipe() or pass it in Process args`, { cause: e });
      }
      throw e;
    }
  }

  /**
   * Reads and decodes the next message, waiting up to `timeoutMs` (-1: forever; `first`: see
   * NativeChannel.recv): the message, or NOTHING. Throws EOFError at EOF.
   */
  #readMessage(method: string, ch: NativeChannel, timeoutMs: number, first: boolean): unknown {
    if (scratchBusy) {
      const r = this.#call(method, () => ch.recv(timeoutMs, undefined, first));
      return r === null ? NOTHING : decode(this.#settleBytes(method, r), this.#takeFds);
    }
    const r = this.#call(method, () => ch.recvInto(recvScratch, 0, timeoutMs, first));
    if (r === null) return NOTHING;
    if (typeof r !== 'number') {
      const b = this.#settleBytes(method, r);
      if (b.length <= KEEP_RECV_SCRATCH) recvScratch = Buffer.allocUnsafeSlow(Math.min(KEEP_RECV_SCRATCH, Math.max(b.length, 2 * recvScratch.length)));
      return decode(b, this.#takeFds);
    }
    scratchBusy = true;
    try {
      return decodeRange(recvScratch, 0, r, this.#takeFds);
    } finally {
      scratchBusy = false;
    }
  }

  #settleBytes(method: string, r: Buffer | null | undefined): Buffer {
    if (r === undefined) throw new EOFError(`Connection.${method}: the other end closed the connection (fd ${this.#fd}) and no message is left`);
    return r as Buffer;
  }

  #settleInto(method: string, r: number | Buffer | null | undefined, bytes: Uint8Array, offset: number): number {
    if (r === undefined) throw new EOFError(`Connection.${method}: the other end closed the connection (fd ${this.#fd}) and no message is left`);
    if (typeof r === 'number') return r;
    throw new BufferTooShort(`Connection.${method}: a message of ${(r as Buffer).length} bytes does not fit in ${bytes.byteLength - offset} bytes from offset ${offset}; it is in error.data`, r as Buffer);
  }

  /**
   * An async receive of one frame. `prepare` checks the call (a throw rejects) and returns how to
   * read without blocking (`null`: nothing yet; `first`: the try before any waiting) and how to
   * turn what was read into the result (a throw rejects).
   */
  #receive<R, T>(prepare: () => { read: (first: boolean) => R | null; settle: (r: R) => T }): Promise<T> {
    let read: (first: boolean) => R | null, settle: (r: R) => T;
    try {
      ({ read, settle } = prepare());
      // Fast path: nothing queued before us and the message is already here.
      if (this.#waiters.length === 0) {
        const r = read(true);
        if (r !== null) return Promise.resolve(settle(r));
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      this.#waiters.push({
        take: () => {
          try {
            const r = read(false);
            if (r === null) return false;
            resolve(settle(r));
          } catch (e) {
            reject(e);
          }
          return true;
        },
        fail: reject,
      });
      this.#watch(true);
    });
  }

  /**
   * A blocking call may have read into the buffer what a queued async receive waits for; the
   * fd then no longer reads as readable and nothing would wake it: hand it over on the next turn.
   */
  #afterSync(): void {
    if (this.#waiters.length === 0 || this.#kicked) return;
    this.#kicked = true;
    setImmediate(() => {
      this.#kicked = false;
      this.#drain();
    });
  }

  #watch(on: boolean): void {
    if (this.#watching === on || !this.#ch) return;
    this.#watching = on;
    this.#ch.watch(on);
  }

  /** Called by the event loop when the fd is readable: settles waiters in order while data lasts. */
  readonly #drain = (): void => {
    const ws = this.#waiters;
    while (ws.length > 0 && this.#ch) {
      // Out of the queue while it reads: a read that fails the connection (a bad frame) closes
      // it, and close() must not reject this waiter with "closed" before it reports why.
      const w = ws.shift()!;
      if (!w.take()) {
        ws.unshift(w);
        break;
      }
    }
    if (ws.length === 0) this.#watch(false);
  };
}

/**
 * @internal Changes how long `c`'s receives spin before they park (spinMs); the spin's adaptation
 * starts over. A pool turns its own off while its workers need every CPU.
 */
export function setConnectionSpin(c: Connection, ms: number): void {
  setSpinImpl(c, ms);
}

/** @internal Sends bytes encoded earlier (with the fds they announce) as one message. */
export function sendPrepared(c: Connection, bytes: Uint8Array, fds: number[]): void {
  sendPreparedImpl(c, bytes, fds);
}

// A Connection travels as its fd (duplicated into the receiver by SCM_RIGHTS) and its options;
// the sender keeps its own, as with Python's DupFd.
interface ConnectionState {
  fd: number;
  readable: boolean;
  writable: boolean;
  maxMessageBytes: number;
  spinMs: number;
}
registerReducer<Connection, ConnectionState>({
  type: 'Connection',
  cls: Connection,
  reduce: (c, ctx) => ({ fd: ctx.addFd(c.fileno()), readable: c.readable, writable: c.writable, maxMessageBytes: c.maxMessageBytes, spinMs: spinOf(c) }),
  rebuild: (s, ctx) => new Connection(ctx.fd(s.fd), { readable: s.readable, writable: s.writable, maxMessageBytes: s.maxMessageBytes, spinMs: s.spinMs }),
});

/**
 * A pair of connected Connections. Duplex (default): a socketpair, both ends send and receive.
 * `Pipe(false)`: an OS pipe; the first end only receives, the second only sends.
 */
export function Pipe(duplex = true, options: PipeOptions = {}): [Connection, Connection] {
  const [a, b] = native.pipe(duplex);
  return [
    new Connection(a, { ...options, readable: true, writable: duplex }),
    new Connection(b, { ...options, readable: duplex, writable: true }),
  ];
}
