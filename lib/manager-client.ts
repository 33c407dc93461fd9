// The client side of a manager: one authenticated connection per server and process (requests
// carry ids, so calls from many proxies overlap), BaseProxy, and how proxies travel and reconnect.
import { isMainThread } from 'node:worker_threads';
import { native, type SocketAddress } from './native.js';
import { Client, ClientSync, formatAddress } from './listener.js';
import type { Connection } from './connection.js';
import { DEFAULT_SPIN_MS, sendPrepared } from './connection.js';
import { ringOf, type SimpleQueue } from './queues.js';
import { setImmediate as immediate } from 'node:timers/promises';
import { Doorbell, NOTHING, RingDuplex, ringQueues, socketEnded } from './ring-duplex.js';
import { encode } from './codec.js';
import { registerReducer } from './reduction.js';
import { AuthenticationError, BrokenBarrierError, Empty, EOFError, Full, RemoteError, TimeoutError } from './errors.js';

// ---- the wire (our own processes only) ----
// request  [reqId, op, ...]; reqId 0 asks for no reply
// reply    [reqId, status, value]
export const OP_CALL = 0; //     [id, method, args]       → the method's result
export const OP_CREATE = 1; //   [typeid, args]           → a token
export const OP_INCREF = 2; //   [id]                     a proxy is on its way to another process
export const OP_CLAIM = 3; //    [id]                     a proxy arrived here: it holds a reference now
export const OP_DECREF = 4; //   [ids]                    proxies here were dropped
export const OP_SHUTDOWN = 5; // []                       → undefined, then the server stops
export const OP_INFO = 6; //     []                       → ServerInfo
export const OP_RINGS = 7; //    [requests, replies, toServer, toClient]   from now on requests come on the first
//                                queue's ring and every reply goes on the second's; the Doorbells wake the
//                                other side's loop when it sleeps there (see ManagerLink)
export const OP_DING = 8; //     the server's own: its doorbell rang (never on the wire)
export const ST_OK = 0;
export const ST_ERROR = 1; //    value: ErrorInfo
export const ST_PROXY = 2; //    value: Token (the result is a new shared object: methodToTypeid)

/** Names a shared object in a manager server. */
export interface Token {
  typeid: string;
  id: number;
  address: SocketAddress;
  /** The methods a proxy may call. */
  exposed: string[];
}

/** An error raised in the server, as it travels. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

export interface ServerInfo {
  pid: number;
  objects: number;
  typeids: string[];
}

/** Our error classes keep their class across the wire (a timed-out get is `Empty` here too). */
const KNOWN: Record<string, new (message: string, options?: { cause?: unknown }) => Error> = {
  Empty, Full, TimeoutError, BrokenBarrierError,
};

/** The caller's error for one raised in the server: `RemoteError` (or our own class), the server's stack in `cause`. */
export function remoteError(info: ErrorInfo, what: string, server: string): Error {
  const cause = new Error(info.message);
  cause.name = info.name;
  cause.stack = info.stack ?? `${info.name}: ${info.message}`;
  const Known = KNOWN[info.name];
  // Their messages name the call already (Queue.get: the queue is empty).
  if (Known) return new Known(/^[\w.]+: /.test(info.message) ? info.message : `${what}: ${info.message}`, { cause });
  return new RemoteError(`${what}: ${info.name}: ${info.message} (raised in the manager server at ${server}; its stack is in error.cause)`, { cause });
}

// ---- one connection per server and process ----

/**
 * A failed call, as the link rejects it: the error is made by `call()` in the caller's async
 * context, so that its stack shows where the call was made (not the link's read loop).
 */
class CallFailure {
  constructor(readonly make: () => Error) {}
}

/** Sends a request on `link` and resolves to its result; failures reject with an error whose stack is the caller's. */
export async function call(link: ManagerLink, msg: unknown[], what: string): Promise<any> {
  try {
    return await link.request(msg, what);
  } catch (e) {
    throw e instanceof CallFailure ? e.make() : e;
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  what: string;
}

const links = new Map<string, ManagerLink>();

function linkKey(address: SocketAddress): string {
  return typeof address === 'string' ? address : `${address[0]}:${address[1]}`;
}

/** How a process reaches a manager: its key, and how long its receives spin (the Connection option; default its default). */
export interface Access {
  authkey: Buffer;
  spinMs?: number;
}

/** This process's connection to the manager at `address` (made on first use, made again after it broke). */
export function linkFor(address: SocketAddress, access: Access): ManagerLink {
  const key = linkKey(address);
  let l = links.get(key);
  if (!l || l.dead) {
    l = new ManagerLink(address, access);
    links.set(key, l);
  }
  return l;
}

/** @internal How this thread talks to the manager at `address`: 'rings', 'socket', or null (not connected). */
export function linkModeOf(address: SocketAddress): 'rings' | 'socket' | null {
  const l = links.get(linkKey(address));
  return !l || l.dead ? null : l.usesRings ? 'rings' : 'socket';
}

/** Closes this process's connections to the manager at `address` (its shutdown, or a client that is done). */
export function dropLink(address: SocketAddress): void {
  const key = linkKey(address);
  links.get(key)?.close();
  links.delete(key);
}

/** How often a wait for a reply on the rings looks whether the server is gone (its Connection at EOF). */
const CHECK_MS = 100;

/**
 * An authenticated connection to one manager server, shared by every proxy of this process.
 * Requests are numbered; the server answers each when it is done, so a call that waits in
 * the server (queue.get, lock.acquire) does not hold up the others.
 *
 * To a server on this machine (an AF_UNIX address), from a process's main thread, requests and
 * replies travel on two shared-memory rings (lib/ring-duplex.ts) instead of the socket: a round
 * trip then costs no system call while both sides spin, and a wake-up is a futex's. The rings go
 * to the server in the first message (OP_RINGS); the socket stays for the handshake, and its EOF
 * tells either side that the other is gone. Requests made before the connection is up wait in the
 * ring. (A worker thread keeps to the socket: the addon closes a Connection's fd when its thread
 * ends, which it does not do for a ring's.)
 */
export class ManagerLink {
  readonly address: SocketAddress;
  readonly access: Access;
  readonly where: string;
  #conn: Connection | null = null;
  #connecting = false;
  /** Encoded requests (and the fds they carry) waiting for the connection (socket mode). */
  #outbox: [Buffer, number[]][] = [];
  /** The rings (ring mode): requests, replies; the doorbells: the server's, ours. */
  readonly #queues: [SimpleQueue, SimpleQueue] | null = null;
  readonly #wire: RingDuplex | null = null;
  readonly #bells: [Doorbell, Doorbell] | null = null;
  /** Ends the pump's sleep on our doorbell (a reply, or the link failed). */
  #wake: (() => void) | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: Error | null = null;
  #pumping = false;
  #decrefs: number[] = [];
  readonly #gone = (): boolean => (this.#conn ? socketEnded(this.#conn) : this.#dead !== null);

  constructor(address: SocketAddress, access: Access) {
    this.address = address;
    this.access = access;
    this.where = formatAddress(address);
    if (typeof address === 'string' && isMainThread) {
      this.#queues = ringQueues(access.spinMs ?? DEFAULT_SPIN_MS);
      this.#wire = new RingDuplex(ringOf(this.#queues[0]), ringOf(this.#queues[1]), 'Connection.send');
      const bells: [Doorbell, Doorbell] = (this.#bells = [new Doorbell(), new Doorbell()]);
      this.#wire.onDoorbell = () => bells[0].ring();
    }
  }

  get dead(): boolean {
    return this.#dead !== null;
  }

  get usesRings(): boolean {
    return this.#wire !== null;
  }


  /** Sends `msg` (its slot 0 becomes the request id) and resolves to the reply's value; a token becomes a proxy. */
  request(msg: unknown[], what: string): Promise<unknown> {
    if (this.#dead) return Promise.reject(new CallFailure(() => this.#deadError(what)));
    const id = this.#nextId++;
    msg[0] = id;
    return new Promise((resolve, reject) => {
      try {
        this.#write(msg, what);
      } catch (e) {
        reject(e);
        return;
      }
      this.#pending.set(id, { resolve, reject, what });
      if ((this.#conn || this.#wire) && !this.#pumping) void this.#pump();
    });
  }

  /** request()'s blocking twin: the reply is read here (replies to others on the way are handed to them). */
  requestSync(msg: unknown[], what: string): unknown {
    if (this.#dead) throw this.#deadError(what);
    const conn = this.#conn ?? this.#connectSync(what);
    const wire = this.#wire;
    const id = this.#nextId++;
    msg[0] = id;
    try {
      if (wire) wire.sendSync(msg, CHECK_MS, this.#gone);
      else conn.send(msg);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPIPE' && wire) {
        this.#fail(e);
        throw this.#deadError(what);
      }
      throw this.#sendError(e, what);
    }
    for (;;) {
      let m: [number, number, unknown];
      try {
        if (wire) {
          const v = wire.recvSync(CHECK_MS, this.#gone, !wire.sharesCpu(native.getcpu()));
          if (v === NOTHING) throw new EOFError('the connection ended');
          m = v as typeof m;
        } else {
          m = conn.recvSync() as typeof m;
        }
      } catch (e) {
        this.#fail(e, 1); // this call too was pending
        throw this.#deadError(what);
      }
      if (m[0] !== id) {
        this.#deliver(m);
        continue;
      }
      if (m[1] === ST_OK) return m[2];
      if (m[1] === ST_PROXY) return makeProxy(m[2] as Token, this.access, true);
      throw remoteError(m[2] as ErrorInfo, what, this.where);
    }
  }

  /** Sends `msg` with no reply wanted; dropped if the link is dead. */
  post(msg: unknown[]): void {
    if (this.#dead) return;
    msg[0] = 0;
    try {
      this.#write(msg, 'manager');
    } catch {
      // nothing waits for it
    }
  }

  /** A dropped proxy's reference, sent with others on the next turn. */
  decref(id: number): void {
    if (this.#dead) return;
    if (this.#decrefs.push(id) === 1) {
      setImmediate(() => {
        const ids = this.#decrefs;
        this.#decrefs = [];
        this.post([0, OP_DECREF, ids]);
      }).unref();
    }
  }

  close(): void {
    this.#fail(null);
  }

  #write(msg: unknown[], what: string): void {
    // The rings take requests before the connection is up (the server reads them once it has
    // them); the socket only once it is.
    const out = this.#wire ?? this.#conn;
    if (out) {
      try {
        out.send(msg);
      } catch (e) {
        throw this.#sendError(e, what);
      }
      if (!this.#conn) this.#connect();
      return;
    }
    const fds: number[] = [];
    let bytes: Buffer;
    try {
      bytes = encode(msg, 'Connection.send', fds);
    } catch (e) {
      throw this.#sendError(e, what);
    }
    this.#outbox.push([bytes, fds]);
    this.#connect();
  }

  #sendError(e: unknown, what: string): unknown {
    if (e instanceof TypeError) {
      // Name the argument as the caller wrote it, not as a slot of our request.
      return new TypeError(`${what}: ${e.message.replace(/^Connection\.send: /, '').replace(/\bmsg\[(?:4|3)\]/g, 'args')}`, { cause: e });
    }
    return e;
  }

  #connect(): void {
    if (this.#connecting || this.#dead) return;
    this.#connecting = true;
    Client(this.address, this.access).then(
      (conn) => {
        this.#connecting = false;
        if (this.#dead || this.#conn) conn.close(); // closed meanwhile, or a …Sync call connected first
        else this.#opened(conn);
      },
      (e) => {
        this.#connecting = false;
        if (!this.#conn) this.#connectFailed(e);
      },
    );
  }

  /** Connects now, blocking (a …Sync call on a link that is not connected yet, or still connecting). */
  #connectSync(what: string): Connection {
    let conn: Connection;
    try {
      conn = ClientSync(this.address, this.access);
    } catch (e) {
      this.#connectFailed(e);
      throw this.#deadError(what);
    }
    this.#opened(conn); // an async connect still under way will find this one and close its own
    return conn;
  }

  /** The connection is up: what waited for it goes out, in order, and replies are read. */
  #opened(conn: Connection): void {
    this.#conn = conn;
    try {
      if (this.#queues) conn.send([0, OP_RINGS, this.#queues[0], this.#queues[1], this.#bells![0], this.#bells![1]]);
      for (const [bytes, fds] of this.#outbox.splice(0)) sendPrepared(conn, bytes, fds);
    } catch (e) {
      this.#fail(e);
      return;
    }
    if (this.#pending.size && !this.#pumping) void this.#pump();
  }

  #connectFailed(e: unknown): void {
    const err = e as NodeJS.ErrnoException;
    if (e instanceof AuthenticationError) {
      this.#fail(new AuthenticationError(`the manager server at ${this.where} refused the authkey: ${err.message}`, { cause: e }));
      return;
    }
    const gone = err.code === 'ECONNREFUSED' || err.code === 'ENOENT';
    this.#fail(Object.assign(new Error(
      `cannot reach the manager server at ${this.where}: ${gone ? `it is not running: it ended or was shut down (${err.code})` : err.message}`,
      { cause: e }), { code: err.code }));
  }

  /** Reads replies while requests are outstanding (so that an idle link keeps no process alive). */
  async #pump(): Promise<void> {
    this.#pumping = true;
    const wire = this.#wire;
    try {
      if (wire) {
        // No lock is held while waiting: a …Sync call meanwhile reads the replies itself.
        while (this.#pending.size > 0 && !this.#dead) {
          const m = wire.tryRecv();
          if (m !== NOTHING) {
            this.#deliver(m as [number, number, unknown]);
            continue;
          }
          if (!(await this.#awaitReply(wire))) throw new EOFError('the connection ended');
        }
        return;
      }
      const conn = this.#conn!;
      while (this.#pending.size > 0 && this.#conn === conn) this.#deliver((await conn.recv()) as [number, number, unknown]);
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Until a reply may be in the ring: first a spin on the loop (each turn runs timers and I/O),
   * then a sleep on our doorbell, which the server rings after a put that finds it armed. False
   * when the server is gone (looked at every CHECK_MS) or the link failed.
   */
  async #awaitReply(wire: RingDuplex): Promise<boolean> {
    const rx = wire.rx;
    const spinMs = this.access.spinMs ?? DEFAULT_SPIN_MS;
    if (spinMs > 0 && !wire.sharesCpu(native.getcpu())) {
      const until = performance.now() + spinMs;
      do {
        await immediate();
        if (!rx.empty() || this.#dead) return !this.#dead;
      } while (performance.now() < until);
    }
    if (wire.armDoorbell()) {
      wire.disarmDoorbell();
      return true;
    }
    const bell = this.#bells![1];
    const alive = await new Promise<boolean>((resolve) => {
      const check = setInterval(() => {
        if (this.#conn && this.#gone()) this.#wake?.();
      }, CHECK_MS);
      this.#wake = () => {
        this.#wake = null;
        clearInterval(check);
        bell.pause();
        resolve(!this.#dead && !(this.#conn !== null && this.#conn.closed));
      };
      bell.listen(() => this.#wake?.());
    });
    wire.disarmDoorbell();
    if (alive && rx.empty() && this.#conn && this.#gone()) return false;
    return alive;
  }

  /** Settles the async request a reply answers. */
  #deliver(m: [number, number, unknown]): void {
    const p = this.#pending.get(m[0]);
    if (!p) return;
    this.#pending.delete(m[0]);
    const status = m[1];
    if (status === ST_OK) p.resolve(m[2]);
    else if (status === ST_PROXY) p.resolve(makeProxy(m[2] as Token, this.access, true));
    else p.reject(new CallFailure(() => remoteError(m[2] as ErrorInfo, p.what, this.where)));
  }

  #deadError(what: string): Error {
    const d = this.#dead!;
    const Cls = d instanceof EOFError ? EOFError : d instanceof AuthenticationError ? AuthenticationError : Error;
    const err = new Cls(`${what}: ${d.message}`, { cause: d });
    if ((d as NodeJS.ErrnoException).code) (err as NodeJS.ErrnoException).code = (d as NodeJS.ErrnoException).code;
    return err;
  }

  /** The link is over: every pending call rejects with why (`null`: closed on purpose). */
  #fail(e: unknown, alsoPending = 0): void {
    if (this.#dead) return;
    const n = this.#pending.size + alsoPending;
    if (e === null) {
      this.#dead = new Error(`the connection to the manager server at ${this.where} was closed (the manager was shut down)`);
    } else if (e instanceof EOFError || (e as NodeJS.ErrnoException)?.code === 'ECONNRESET' || (e as NodeJS.ErrnoException)?.code === 'EPIPE') {
      this.#dead = new EOFError(
        `the manager server at ${this.where} is gone: its connection closed${n ? ` with ${n} call${n > 1 ? 's' : ''} pending` : ''}. ` +
          'The server process ended (killed, crashed, or shut down); start a new manager',
        { cause: e },
      );
    } else {
      this.#dead = e instanceof Error ? e : new Error(String(e));
    }
    this.#conn?.close();
    this.#conn = null;
    this.#outbox = [];
    this.#wire?.abandon();
    for (const q of this.#queues ?? []) q.close();
    this.#wake?.();
    for (const b of this.#bells ?? []) b.close();
    if (links.get(linkKey(this.address)) === this) links.delete(linkKey(this.address));
    for (const [, p] of this.#pending) p.reject(new CallFailure(() => this.#deadError(p.what)));
    this.#pending.clear();
  }
}

// ---- proxies ----

/** Drops the server's reference of a proxy that was garbage-collected. */
const released = new FinalizationRegistry<{ link: ManagerLink; id: number }>(({ link, id }) => link.decref(id));

/** Proxy classes by the name they travel under, so that the receiving process rebuilds the same kind. */
const proxyKinds = new Map<string, new (token: Token, access: Access) => BaseProxy>();

/** Makes `cls` rebuildable by name in other processes (each proxy type registers itself). */
export function registerProxyKind(name: string, cls: new (token: Token, access: Access) => BaseProxy): void {
  proxyKinds.set(name, cls);
  kindOf.set(cls, name);
}
const kindOf = new Map<Function, string>();

/**
 * A handle on an object held by a manager server (Python's BaseProxy). Its methods call the
 * server and return Promises; it travels to other processes (Process args, Pool tasks, queues,
 * Connections) and reconnects from there with the manager's authkey.
 */
export class BaseProxy {
  readonly #token: Token;
  readonly #access: Access;
  #link: ManagerLink;

  /** @internal Proxies come from manager factories and methods, or arrive from other processes. */
  constructor(token: Token, access: Access, owned = false) {
    this.#token = token;
    this.#access = access;
    this.#link = linkFor(token.address, access);
    // A proxy made here from a reply already holds its reference; one that arrived claims one.
    if (!owned) this.#link.post([0, OP_CLAIM, token.id]);
    released.register(this, { link: this.#link, id: token.id });
  }

  /** Calls `method` of the referent in the server (Python's `_callmethod`). */
  _callMethod(method: string, args: unknown[] = []): Promise<any> {
    let link = this.#link;
    if (link.dead) link = this.#relink();
    return call(link, [0, OP_CALL, this.#token.id, method, args], `${this.#token.typeid}.${method}`);
  }

  /** `_callMethod`'s blocking twin: the thread waits for the server's answer (the …Sync methods). */
  _callMethodSync(method: string, args: unknown[] = []): any {
    let link = this.#link;
    if (link.dead) link = this.#relink();
    return link.requestSync([0, OP_CALL, this.#token.id, method, args], `${this.#token.typeid}.${method}`);
  }

  /** The methods the server lets this proxy call. */
  get _exposed(): readonly string[] {
    return this.#token.exposed;
  }

  /** @internal */
  get _token(): Token {
    return this.#token;
  }

  toString(): string {
    return `<${kindOf.get(this.constructor) ?? this.constructor.name} object, typeid '${this.#token.typeid}' at ${formatAddress(this.#token.address)}#${this.#token.id}>`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /** @internal What another process needs to rebuild this proxy; the server keeps the object until it arrives. */
  _reduce(): ProxyState {
    this.#link.post([0, OP_INCREF, this.#token.id]);
    return { token: this.#token, authkey: this.#access.authkey, spinMs: this.#access.spinMs, kind: kindOf.get(this.constructor) ?? 'AutoProxy' };
  }

  /** A fresh link after the old one broke; the server will not know this proxy's object unless it still runs. */
  #relink(): ManagerLink {
    this.#link = linkFor(this.#token.address, this.#access);
    return this.#link;
  }
}

interface ProxyState {
  token: Token;
  authkey: Buffer;
  spinMs: number | undefined;
  kind: string;
}

// AutoProxy classes by exposed method list: the methods live on the prototype, as in a written class.
const autoProxies = new Map<string, new (token: Token, access: Access, owned?: boolean) => BaseProxy>();

/** A proxy class whose methods are `exposed`, each with its …Sync twin (Python's AutoProxy). */
export function autoProxyClass(exposed: readonly string[]): new (token: Token, access: Access, owned?: boolean) => BaseProxy {
  const key = exposed.join('\0');
  let cls = autoProxies.get(key);
  if (!cls) {
    cls = class AutoProxy extends BaseProxy {};
    for (const m of exposed) {
      if (m in BaseProxy.prototype || m === 'constructor') continue;
      Object.defineProperty(cls.prototype, m, {
        value: function (this: BaseProxy, ...args: unknown[]) {
          return this._callMethod(m, args);
        },
        writable: true,
        configurable: true,
      });
      Object.defineProperty(cls.prototype, `${m}Sync`, {
        value: function (this: BaseProxy, ...args: unknown[]) {
          return this._callMethodSync(m, args);
        },
        writable: true,
        configurable: true,
      });
    }
    autoProxies.set(key, cls);
    kindOf.set(cls, 'AutoProxy');
  }
  return cls;
}

/** The proxy of a token: its registered kind, else an AutoProxy of its exposed methods. */
export function makeProxy(token: Token, access: Access, owned: boolean, kind?: string): BaseProxy {
  const Kind = (kind && proxyKinds.get(kind)) || typeKinds.get(token.typeid) || autoProxyClass(token.exposed);
  return new (Kind as new (t: Token, a: Access, o: boolean) => BaseProxy)(token, access, owned);
}

/** The proxy class each typeid gets in this process (from register() and the SyncManager types). */
const typeKinds = new Map<string, new (token: Token, access: Access) => BaseProxy>();

export function setProxyType(typeid: string, cls: new (token: Token, access: Access) => BaseProxy): void {
  typeKinds.set(typeid, cls);
}

registerReducer<BaseProxy, ProxyState>({
  type: 'ManagerProxy',
  cls: BaseProxy,
  reduce: (p) => p._reduce(),
  rebuild: (s) => makeProxy(s.token, { authkey: Buffer.from(s.authkey), ...(s.spinMs !== undefined && { spinMs: s.spinMs }) }, false, s.kind),
});
