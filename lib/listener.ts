// Listener and Client (API.md, Connections): stream sockets on AF_UNIX or TCP that yield the same
// Connection as Pipe, with CPython's authkey challenge/response handshake (3.11 and 3.12+ digests).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, type NativeFdWatcher, type SocketAddress, type SocketFamily } from './native.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { AuthenticationError } from './errors.js';
import { kWaitable, type WaitHandle } from './waitable.js';

export type { SocketFamily } from './native.js';

/** A socket path (AF_UNIX; a leading '\0' names a Linux abstract address) or [host, port] (TCP). */
export type Address = string | readonly [host: string, port: number];

/** What an authkey may be given as; a string counts as its UTF-8 bytes. */
export type AuthKey = Buffer | Uint8Array | string;

/** Options of the Connections a Listener or Client makes. */
export type SocketConnectionOptions = Pick<ConnectionOptions, 'maxMessageBytes' | 'spinMs'>;

export interface ListenerOptions extends SocketConnectionOptions {
  /** Where to listen (default: a new socket path in the temp dir). Port 0 picks a free port. */
  address?: Address;
  /** Default: from the address (a string is AF_UNIX, [host, port] AF_INET, or AF_INET6 for an IPv6 literal). */
  family?: SocketFamily;
  /** Connections the kernel queues before accept() takes them (default 128; Python's is 1). */
  backlog?: number;
  /** With an authkey, every connection must pass the handshake before accept() hands it out. */
  authkey?: AuthKey | null;
}

export interface ClientOptions extends SocketConnectionOptions {
  family?: SocketFamily;
  authkey?: AuthKey | null;
}

const DEFAULT_BACKLOG = 128;

// ---- addresses ----

/** Python's address_type: a string is AF_UNIX, [host, port] is TCP (IPv6 when the host is an IPv6 literal). */
export function addressFamily(address: Address, what: string): SocketFamily {
  if (typeof address === 'string') return 'AF_UNIX';
  if (Array.isArray(address) && address.length === 2 && typeof address[0] === 'string' && Number.isInteger(address[1])) {
    return isIP(address[0]) === 6 ? 'AF_INET6' : 'AF_INET';
  }
  throw new TypeError(`${what}: address must be a socket path (string) or [host, port], got ${describe(address)}`);
}

function describe(x: unknown): string {
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}

/** An address as people write it: a path, '@name' for an abstract one, host:port or [v6]:port. */
export function formatAddress(address: SocketAddress | Address): string {
  if (typeof address === 'string') return address.startsWith('\0') ? `@${address.slice(1)}` : address;
  const [host, port] = address;
  return host.includes(':') ? `[${host}]:${port}` : `${host || '0.0.0.0'}:${port}`;
}

function checkAddress(address: Address, family: SocketFamily | undefined, what: string): SocketFamily {
  const inferred = addressFamily(address, what);
  if (typeof address !== 'string' && (address[1] < 0 || address[1] > 65535)) {
    throw new RangeError(`${what}: port must be 0 to 65535, got ${address[1]}`);
  }
  if (family === undefined) return inferred;
  if (family !== 'AF_UNIX' && family !== 'AF_INET' && family !== 'AF_INET6') {
    throw new TypeError(`${what}: family must be 'AF_UNIX', 'AF_INET' or 'AF_INET6', got ${describe(family)}`);
  }
  if ((family === 'AF_UNIX') !== (inferred === 'AF_UNIX')) {
    throw new TypeError(`${what}: family ${family} does not fit the address ${describe(address)}: AF_UNIX takes a path, AF_INET/AF_INET6 take [host, port]`);
  }
  return family;
}

function keyBytes(authkey: AuthKey | null | undefined, what: string): Buffer | null {
  if (authkey === undefined || authkey === null) return null;
  if (typeof authkey === 'string') return Buffer.from(authkey, 'utf8');
  if (authkey instanceof Uint8Array) return Buffer.from(authkey);
  throw new TypeError(`${what}: authkey must be a Buffer, a Uint8Array or a string, got ${typeof authkey}`);
}

// What to do about a failed socket call, by its code.
const HINTS: Record<string, string> = {
  EADDRINUSE: 'another socket is bound there (or a stale socket file was left): choose another address, port 0, or remove the file',
  EADDRNOTAVAIL: 'that address does not belong to this machine',
  EACCES: 'permission denied: check the directory of the socket path, or use a port above 1023',
  ECONNREFUSED: 'nothing listens there: start the Listener (or manager) first, or check the address',
  ENOENT: 'no socket exists at that path: start the Listener (or manager) first, or check the path',
  ENOTFOUND: 'the host name does not resolve',
  ENAMETOOLONG: 'AF_UNIX paths are short (at most 107 bytes): use a shorter path',
  ETIMEDOUT: 'the host did not answer',
  EHOSTUNREACH: 'no route to that host',
  ENETUNREACH: 'no route to that network',
  EMFILE: 'this process has too many open files: close some, or raise its limit (ulimit -n)',
};

function socketError(e: unknown, what: string, address: Address | string): Error {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || !err.code) return e as Error;
  const text = err.message.replace(/^[a-z]+: /, '').replace(/ \([A-Z]+\)$/, '');
  const hint = HINTS[err.code] ? `: ${HINTS[err.code]}` : '';
  const out = new Error(`${what}: ${err.syscall ?? 'socket'} ${formatAddress(address as Address)} failed: ${text} (${err.code})${hint}`, { cause: e });
  return Object.assign(out, { code: err.code, errno: err.errno, syscall: err.syscall, address: formatAddress(address as Address) });
}

// ---- the handshake (CPython's multiprocessing.connection deliver_challenge / answer_challenge) ----

const CHALLENGE = Buffer.from('#CHALLENGE#');
const WELCOME = Buffer.from('#WELCOME#');
const FAILURE = Buffer.from('#FAILURE#');
/** CPython 3.12+ sends '{sha256}' and 40 random bytes; 3.11 and older sent 20 bytes and meant HMAC-MD5. */
const MESSAGE_LENGTH = 40;
const LEGACY_LENGTHS = [20, 16]; // a 3.11 challenge, and a 3.11 client's raw HMAC-MD5 reply
/** CPython reads every handshake message with recv_bytes(256): a longer one is refused before it is read. */
const AUTH_MAX_BYTES = 256;
// CPython's digest names, and Node's for the same HMACs.
const DIGESTS = new Map([['md5', 'md5'], ['sha256', 'sha256'], ['sha384', 'sha384'], ['sha3_256', 'sha3-256'], ['sha3_384', 'sha3-384']]);
const MAX_DIGEST_NAME = 8;

/** The digest a challenge (or a reply) names, '' for the legacy unprefixed HMAC-MD5, and what it carries. */
function digestOf(message: Buffer): { name: string; payload: Buffer } {
  if (LEGACY_LENGTHS.includes(message.length)) return { name: '', payload: message };
  if (message[0] === 0x7b /* { */) {
    const end = message.indexOf(0x7d /* } */, 1);
    if (end > 0 && end <= MAX_DIGEST_NAME + 1) {
      const name = message.toString('latin1', 1, end);
      if (DIGESTS.has(name)) return { name, payload: message.subarray(end + 1) };
    }
  }
  throw new AuthenticationError(`unsupported handshake message: ${message.length} bytes with no known {digest} prefix`);
}

function hmac(name: string, key: Buffer, message: Buffer): Buffer {
  return createHmac(DIGESTS.get(name)!, key).update(message).digest();
}

// The steps of the handshake are generators that yield where they need the peer's next message
// (read with recv_bytes(256) semantics), so that the async Listener/Client and ClientSync share them.
type Steps = Generator<void, void, Buffer>;

/** Challenges the peer to show it holds `key`. */
function* deliverChallenge(conn: Connection, key: Buffer): Steps {
  const message = Buffer.concat([Buffer.from('{sha256}'), randomBytes(MESSAGE_LENGTH)]);
  conn.sendBytes(Buffer.concat([CHALLENGE, message]));
  const response = yield;
  try {
    // A 3.12+ peer answers '{digest}' + HMAC over the whole message (prefix included); a 3.11
    // one answers a raw 16-byte HMAC-MD5 of the same bytes.
    const { name, payload } = digestOf(response);
    const expected = hmac(name || 'md5', key, message);
    if (expected.length !== payload.length || !timingSafeEqual(expected, payload)) {
      throw new AuthenticationError('digest received was wrong');
    }
  } catch (e) {
    conn.sendBytes(FAILURE);
    throw e;
  }
  conn.sendBytes(WELCOME);
}

/** The peer challenges us: answer with the digest it names (HMAC-MD5 for a legacy challenge). */
function* answerChallenge(conn: Connection, key: Buffer): Steps {
  const m = yield;
  if (!m.subarray(0, CHALLENGE.length).equals(CHALLENGE)) throw new AuthenticationError('protocol error: expected a challenge');
  const message = m.subarray(CHALLENGE.length);
  if (message.length < LEGACY_LENGTHS[0]!) throw new AuthenticationError(`challenge too short: ${message.length} bytes`);
  const { name } = digestOf(message);
  conn.sendBytes(name ? Buffer.concat([Buffer.from(`{${name}}`), hmac(name, key, message)]) : hmac('md5', key, message));
  const r = yield;
  if (!r.equals(WELCOME)) throw new AuthenticationError('digest sent was rejected');
}

/** Both halves of the mutual handshake: the listener challenges first, then answers. */
function* handshakeSteps(conn: Connection, key: Buffer, server: boolean): Steps {
  if (server) {
    yield* deliverChallenge(conn, key);
    yield* answerChallenge(conn, key);
  } else {
    yield* answerChallenge(conn, key);
    yield* deliverChallenge(conn, key);
  }
}

/** On failure the connection is closed and the error says what happened and what to do. */
function handshakeError(conn: Connection, e: unknown, server: boolean, what: string): AuthenticationError {
  conn.close();
  const why = (e as Error).message;
  const peer = server ? 'the client' : 'the listener';
  let advice: string;
  if (e instanceof AuthenticationError) advice = 'both ends must use the same authkey';
  else if (/bad message length/.test(why)) advice = `${peer} sent a message longer than the ${AUTH_MAX_BYTES} bytes a handshake allows (does it use an authkey?)`;
  else advice = `${peer} closed the connection or broke the protocol (does it use the same authkey?)`;
  return new AuthenticationError(`${what}: the authkey handshake failed (${why}): ${advice}; the connection is closed`, { cause: e });
}

async function handshake(conn: Connection, key: Buffer, server: boolean, what: string): Promise<void> {
  const steps = handshakeSteps(conn, key, server);
  try {
    for (let s = steps.next(); !s.done; ) s = steps.next(await conn.recvBytes(AUTH_MAX_BYTES));
  } catch (e) {
    throw handshakeError(conn, e, server, what);
  }
}

function handshakeSync(conn: Connection, key: Buffer, what: string): void {
  const steps = handshakeSteps(conn, key, false);
  try {
    for (let s = steps.next(); !s.done; ) s = steps.next(conn.recvBytesSync(AUTH_MAX_BYTES));
  } catch (e) {
    throw handshakeError(conn, e, false, what);
  }
}

// ---- Listener ----

type Pending = { resolve: (c: Connection) => void; reject: (e: unknown) => void };

const liveListeners = new Set<Listener>();
let exitHook = false;

/**
 * A bound, listening socket (Python's `multiprocessing.connection.Listener`). `accept()` resolves
 * to a Connection, after the authkey handshake when there is an authkey.
 */
export class Listener {
  #fd: number;
  readonly #address: SocketAddress;
  readonly #family: SocketFamily;
  readonly #authkey: Buffer | null;
  readonly #connOptions: SocketConnectionOptions;
  readonly #watcher: NativeFdWatcher;
  readonly #pending: Pending[] = [];
  #each: Pending | null = null;
  #resting = false;
  readonly #waitCbs = new Set<() => void>();
  readonly #handshakes = new Set<Connection>();
  readonly #unlinkPath: string | null;
  #watching = false;
  #lastAccepted: SocketAddress | null = null;

  constructor(options: ListenerOptions = {}) {
    if (!options || typeof options !== 'object') throw new TypeError('Listener: expected an options object { address?, family?, backlog?, authkey? }');
    const { backlog = DEFAULT_BACKLOG, maxMessageBytes, spinMs } = options;
    const wanted = options.family ?? (options.address !== undefined ? undefined : 'AF_UNIX');
    const address: Address = options.address ?? (wanted === 'AF_UNIX' ? arbitraryPath() : [wanted === 'AF_INET6' ? '::1' : '127.0.0.1', 0]);
    const family = checkAddress(address, wanted, 'Listener');
    if (!Number.isInteger(backlog) || backlog < 0) throw new TypeError(`Listener: backlog must be a non-negative integer, got ${describe(backlog)}`);
    this.#authkey = keyBytes(options.authkey, 'Listener');
    this.#connOptions = { ...(maxMessageBytes !== undefined && { maxMessageBytes }), ...(spinMs !== undefined && { spinMs }) };
    const [host, port] = typeof address === 'string' ? [address, 0] : address;
    let fd: number, bound: SocketAddress;
    try {
      [fd, bound] = native.listen(family, host, port, backlog);
    } catch (e) {
      throw socketError(e, 'Listener', address);
    }
    this.#fd = fd;
    this.#family = family;
    this.#address = bound;
    this.#unlinkPath = typeof bound === 'string' && !bound.startsWith('\0') ? bound : null;
    this.#watcher = new native.FdWatcher(fd, this.#onReady);
    liveListeners.add(this);
    if (!exitHook && this.#unlinkPath) {
      exitHook = true;
      // As Python's Finalize: a socket file is removed when the process exits with the Listener open.
      process.on('exit', () => {
        for (const l of liveListeners) l.close();
      });
    }
  }

  /** The bound address: [host, port] with the real port, or the socket path. */
  get address(): SocketAddress {
    return typeof this.#address === 'string' ? this.#address : [this.#address[0], this.#address[1]];
  }

  get family(): SocketFamily {
    return this.#family;
  }

  /** The peer address of the last accepted connection (Python's `last_accepted`; '' for an unnamed AF_UNIX peer). */
  get lastAccepted(): SocketAddress | null {
    return this.#lastAccepted;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The next connection; with an authkey, once the client passed the handshake (else it rejects with AuthenticationError). */
  accept(): Promise<Connection> {
    if (this.#fd < 0) return Promise.reject(this.#closedError('accept'));
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#pump();
    });
  }

  /**
   * @internal Accepts every connection from now on, each handed to `onConn` once it passed the
   * handshake (failures to `onError`), until closed: a server that never has to re-arm accept().
   */
  _acceptEach(onConn: (c: Connection) => void, onError: (e: unknown) => void): void {
    if (this.#fd < 0) throw this.#closedError('accept');
    this.#each = { resolve: onConn, reject: onError };
    this.#pump();
  }

  /** Closes the socket (and removes its file); pending accept() calls reject. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    this.#watcher.close();
    native.closeFd(this.#fd);
    this.#fd = -1;
    liveListeners.delete(this);
    if (this.#unlinkPath) {
      try {
        unlinkSync(this.#unlinkPath);
      } catch {
        // already gone
      }
    }
    const err = this.#closedError('accept');
    for (const p of this.#pending.splice(0)) p.reject(err);
    this.#each = null;
    for (const c of this.#handshakes) c.close(); // their accept() rejects as the handshake fails
    for (const cb of this.#waitCbs) queueMicrotask(cb);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `<Listener ${formatAddress(this.#address)}${this.#fd < 0 ? ' closed' : ''}>`;
  }

  /** @internal For wait(): ready when a connection is pending (or the listener is closed). */
  [kWaitable](): WaitHandle {
    return {
      ready: () => this.#fd < 0 || native.fdPoll(this.#fd, false, 0),
      watch: (cb) => {
        this.#waitCbs.add(cb);
        this.#updateWatch();
        return () => {
          this.#waitCbs.delete(cb);
          this.#updateWatch();
        };
      },
    };
  }

  #closedError(method: string): Error {
    return new Error(`Listener.${method}: the listener on ${formatAddress(this.#address)} is closed; create a new Listener`);
  }

  readonly #onReady = (): void => {
    for (const cb of this.#waitCbs) cb();
    this.#pump();
  };

  /** Hands pending connections to waiting accept() calls, in order (then to _acceptEach). */
  #pump(): void {
    while ((this.#pending.length || (this.#each && !this.#resting)) && this.#fd >= 0) {
      let got: [number, SocketAddress] | null;
      try {
        got = native.accept(this.#fd);
      } catch (e) {
        const err = socketError(e, 'Listener.accept', this.#address);
        if (this.#pending.length) {
          this.#pending.shift()!.reject(err);
          continue;
        }
        // Out of fds and the like: the socket stays readable, so rest rather than spin.
        this.#each!.reject(err);
        this.#resting = true;
        setTimeout(() => {
          this.#resting = false;
          this.#pump();
        }, 100).unref();
        break;
      }
      if (!got) break;
      const waiter = this.#pending.shift() ?? this.#each!;
      this.#lastAccepted = got[1];
      let conn: Connection;
      try {
        conn = new Connection(got[0], this.#connOptions);
      } catch (e) {
        native.closeFd(got[0]);
        waiter.reject(e);
        continue;
      }
      if (!this.#authkey) {
        waiter.resolve(conn);
        continue;
      }
      // Handshakes run side by side: a client that stalls in one does not hold up the others.
      this.#handshakes.add(conn);
      handshake(conn, this.#authkey, true, `Listener.accept on ${formatAddress(this.#address)}`).then(
        () => {
          this.#handshakes.delete(conn);
          if (this.#fd < 0) {
            conn.close();
            waiter.reject(this.#closedError('accept'));
          } else {
            waiter.resolve(conn);
          }
        },
        (e) => {
          this.#handshakes.delete(conn);
          waiter.reject(this.#fd < 0 ? this.#closedError('accept') : e);
        },
      );
    }
    this.#updateWatch();
  }

  #updateWatch(): void {
    if (this.#fd < 0) return;
    const want = this.#pending.length > 0 || (this.#each !== null && !this.#resting) || this.#waitCbs.size > 0;
    if (want === this.#watching) return;
    this.#watching = want;
    if (want) this.#watcher.start(true, false);
    else this.#watcher.stop();
  }
}

function arbitraryPath(): string {
  return join(tmpdir(), `multiproc-listener-${process.pid}-${randomBytes(6).toString('hex')}`);
}

// ---- Client ----

/**
 * Connects to a Listener (ours or CPython's) at `address` and, with an authkey, runs the
 * handshake. Host names are resolved with dns.lookup (getaddrinfo on libuv's thread pool, for
 * that moment only, as Node's own net.connect does); IP literals and paths need no lookup.
 */
export async function Client(address: Address, options: ClientOptions = {}): Promise<Connection> {
  const c = clientArgs(address, options, 'Client');
  let host = c.host;
  if (c.needsLookup) {
    try {
      const { lookup } = await import('node:dns/promises'); // loaded only for names
      host = (await lookup(host, { family: c.family === 'AF_INET6' ? 6 : 4 })).address;
    } catch (e) {
      throw socketError(e, c.what, address);
    }
  }
  const fd = await connectFd(c.family, host, c.port, c.what, address);
  const conn = new Connection(fd, c.connOptions);
  if (c.key) await handshake(conn, c.key, false, c.what);
  return conn;
}

/**
 * Client's blocking twin: connects (and authenticates) before it returns, blocking the thread;
 * a host name is resolved with getaddrinfo right here.
 */
export function ClientSync(address: Address, options: ClientOptions = {}): Connection {
  const c = clientArgs(address, options, 'ClientSync');
  let host = c.host, fd: number, inProgress: boolean;
  try {
    if (c.needsLookup) host = native.resolve(c.family, host);
    for (let retryMs = 1; ; retryMs = Math.min(2 * retryMs, MAX_RETRY_MS)) {
      try {
        [fd, inProgress] = native.connect(c.family, host, c.port);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        Atomics.wait(sleeper, 0, 0, retryMs); // a full AF_UNIX backlog: wait, try again
      }
    }
  } catch (e) {
    throw socketError(e, c.what, address);
  }
  if (inProgress) {
    try {
      native.fdPoll(fd, true, -1);
      native.connectResult(fd, c.family !== 'AF_UNIX');
    } catch (e) {
      native.closeFd(fd);
      throw socketError(e, c.what, address);
    }
  }
  const conn = new Connection(fd, c.connOptions);
  if (c.key) handshakeSync(conn, c.key, c.what);
  return conn;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** What Client and ClientSync make of their arguments. */
function clientArgs(address: Address, options: ClientOptions, fn: string) {
  const what = `${fn}(${typeof address === 'string' || Array.isArray(address) ? formatAddress(address) : describe(address)})`;
  const family = checkAddress(address, options?.family, fn);
  const key = keyBytes(options?.authkey, fn);
  const connOptions: SocketConnectionOptions = {
    ...(options?.maxMessageBytes !== undefined && { maxMessageBytes: options.maxMessageBytes }),
    ...(options?.spinMs !== undefined && { spinMs: options.spinMs }),
  };
  let host: string, port = 0, needsLookup = false;
  if (typeof address === 'string') {
    host = address;
  } else {
    [host, port] = address;
    // '' and the wildcard mean "this machine" to connect(), as in Python.
    if (host === '' || host === '0.0.0.0' || host === '::') host = family === 'AF_INET6' ? '::1' : '127.0.0.1';
    else needsLookup = !isIP(host);
  }
  return { what, family, key, connOptions, host, port, needsLookup };
}

const MAX_RETRY_MS = 100;

/** A connected, blocking fd; the connect itself waits on the event loop. */
function connectFd(family: SocketFamily, host: string, port: number, what: string, address: Address): Promise<number> {
  return new Promise((resolve, reject) => {
    const attempt = (retryMs: number): void => {
      let fd: number, inProgress: boolean;
      try {
        [fd, inProgress] = native.connect(family, host, port);
      } catch (e) {
        // A full AF_UNIX backlog says EAGAIN instead of waiting as TCP does: wait and try again.
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') setTimeout(attempt, retryMs, Math.min(2 * retryMs, MAX_RETRY_MS));
        else reject(socketError(e, what, address));
        return;
      }
      if (!inProgress) return resolve(fd);
      const watcher = new native.FdWatcher(fd, () => {
        watcher.close();
        try {
          native.connectResult(fd, family !== 'AF_UNIX');
          resolve(fd);
        } catch (e) {
          native.closeFd(fd);
          reject(socketError(e, what, address));
        }
      });
      watcher.start(false, true);
    };
    attempt(1);
  });
}
