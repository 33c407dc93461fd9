// A manager's server (Python's managers.Server): holds shared objects by id, serves every client
// connection at once on the event loop, counts references so that nothing outlives its proxies.
import { Listener, formatAddress, type Address, type AuthKey } from './listener.js';
import { DEFAULT_SPIN_MS, NOTHING, type Connection } from './connection.js';
import { native, type SocketAddress } from './native.js';
import { loadTarget, type TargetDesc } from './target.js';
import { asCallOf, pyError, type CallContext } from './manager-objects.js';
import {
  OP_CALL, OP_CLAIM, OP_CREATE, OP_DECREF, OP_DING, OP_INCREF, OP_INFO, OP_RINGS, OP_SHUTDOWN, ST_ERROR, ST_OK, ST_PROXY,
  type ErrorInfo, type ServerInfo, type Token,
} from './manager-client.js';
import { ringOf, type SimpleQueue } from './queues.js';
import { RingDuplex, type Doorbell } from './ring-duplex.js';

/** How the server makes and exposes objects of one typeid. */
export interface ServedType {
  /** Makes the referent (may be async); null: the server cannot create this typeid. */
  create: ((...args: any[]) => unknown) | null;
  /** Methods proxies may call (default: the object's public methods). */
  exposed?: readonly string[] | null;
  /** Methods whose result is itself shared, as a proxy of the given typeid. */
  methodToTypeid?: Readonly<Record<string, string>> | null;
}

interface Entry {
  obj: unknown;
  typeid: string;
  exposed: Set<string>;
  exposedList: string[];
  methodToTypeid: Readonly<Record<string, string>> | null;
  refs: number;
  /** References held for proxies on their way to another process, by the client that sent them. */
  transit: Map<ServerClient, number> | null;
}

/** One client connection (a process): its references, and the signal that ends its waits. */
class ServerClient implements CallContext {
  readonly client = this;
  readonly refs = new Map<number, number>();
  readonly #abort = new AbortController();
  readonly signal = this.#abort.signal;
  /** Its rings, once it sent them (OP_RINGS): requests come and replies go there, not on `conn`. */
  wire: RingDuplex | null = null;
  queues: SimpleQueue[] = [];
  /** Its doorbells: the one it rings for us, the one we ring for it. */
  bells: Doorbell[] = [];
  constructor(readonly conn: Connection) {}
  gone(): void {
    this.#abort.abort();
    this.wire?.abandon();
    for (const q of this.queues) q.close();
    for (const b of this.bells) b.close();
  }
}

/** What #received gets when a ring client's doorbell rang. */
const DING = [0, OP_DING];

/** The longest a busy-poll keeps the loop, in ms, however many requests it serves. */
const MAX_POLL_MS = 2;
/** A busy-poll idle this long yields the CPU on each sweep (as a blocking receive's spin does). */
const YIELD_AFTER_MS = 0.02;

/** Grace for references of proxies in transit when their sender disconnects before they arrive. */
const TRANSIT_GRACE_MS = 10_000;

/** Public methods of an object: its (inherited) function properties, minus constructor and _private ones. */
export function publicMethods(obj: unknown): string[] {
  const out = new Set<string>();
  for (let p = obj; p !== null && p !== undefined && p !== Object.prototype && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
    if (typeof p !== 'object' && typeof p !== 'function') break;
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === 'constructor' || k.startsWith('_') || out.has(k)) continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (d && typeof d.value === 'function') out.add(k);
    }
  }
  return [...out];
}

function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && typeof (x as PromiseLike<unknown>).then === 'function';
}

/** An iterator result (Map.keys() and the like) goes back as an array: iterators cannot be cloned. */
function sendable(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as Iterator<unknown>).next === 'function' &&
      typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return [...(v as Iterable<unknown>)];
  }
  return v;
}

/**
 * Ends what a referent owns once no proxy holds it (or the server stops): its
 * `[Symbol.asyncDispose]` or `[Symbol.dispose]`, if it has one (a manager Pool terminates).
 */
function disposeReferent(obj: unknown): Promise<void> {
  try {
    if ((typeof obj !== 'object' && typeof obj !== 'function') || obj === null) return Promise.resolve();
    const o = obj as { [Symbol.asyncDispose]?: () => unknown; [Symbol.dispose]?: () => unknown };
    const d = o[Symbol.asyncDispose] ?? o[Symbol.dispose];
    if (typeof d !== 'function') return Promise.resolve();
    return Promise.resolve(d.call(o)).then(() => {}, () => {});
  } catch {
    return Promise.resolve();
  }
}

function isClass(fn: Function): boolean {
  return /^class\b/.test(Function.prototype.toString.call(fn));
}

/**
 * Serves shared objects to authenticated clients on a Listener. Python's `Server`: made by
 * `BaseManager.getServer()` in this process, or by `start()` in a manager process.
 */
export class ManagerServer {
  readonly #listener: Listener;
  readonly #types: Map<string, ServedType>;
  readonly #objects = new Map<number, Entry>();
  readonly #clients = new Set<ServerClient>();
  #nextId = 1;
  #serving = false;
  #stopped = false;
  #done!: () => void;
  readonly #finished = new Promise<void>((r) => (this.#done = r));
  readonly #where: string;
  /** Busy-poll (see #poll): the longest and the current idle spin in ms (0: none); when the last began. */
  readonly #spinMax: number;
  #spinCur: number;
  #pollStart = 0;
  #polling = false;
  /** A request just served needs the loop (a pending result, shutdown): end the busy-poll. */
  #yield = false;

  /**
   * `busyPoll`: after each request, poll every client for the next one for up to `spinMs` (the
   * Connection default when unset) before going back to the loop. Only where the server owns
   * its process (a manager process): it holds the loop for that long.
   */
  constructor(types: Map<string, ServedType>, options: { address?: Address; authkey: AuthKey; spinMs?: number; busyPoll?: boolean }) {
    this.#types = types;
    this.#spinMax = this.#spinCur = options.busyPoll ? (options.spinMs ?? DEFAULT_SPIN_MS) : 0;
    this.#listener = new Listener({
      address: options.address, authkey: options.authkey, backlog: 128, ...(options.spinMs !== undefined && { spinMs: options.spinMs }),
    });
    this.#where = formatAddress(this.#listener.address);
  }

  get address(): SocketAddress {
    return this.#listener.address;
  }

  /** Serves until a client asks for shutdown (or `shutdown()` is called here); then resolves. */
  serveForever(): Promise<void> {
    if (!this.#serving && !this.#stopped) {
      this.#serving = true;
      // Every connection is accepted at once and authenticated on its own: a client that
      // stalls in the handshake holds up nobody. One with the wrong key reaches nothing.
      this.#listener._acceptEach((conn) => void this.#serve(conn), () => {});
    }
    return this.#finished;
  }

  /**
   * Stops serving: closes the listener and every client connection, and disposes of the objects
   * (a Pool's workers end); serveForever() resolves once they are. Idempotent.
   */
  shutdown(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#listener.close();
    for (const c of this.#clients) {
      c.conn.close();
      c.gone();
    }
    const disposing = [...this.#objects.values()].map((e) => disposeReferent(e.obj));
    this.#objects.clear();
    void Promise.all(disposing).then(() => this.#done());
  }

  /** @internal How many objects the server holds (Python's `_number_of_objects`). */
  get objectCount(): number {
    return this.#objects.size;
  }

  #serve(conn: Connection): void {
    const c = new ServerClient(conn);
    this.#clients.add(c);
    try {
      conn._serveEach((m) => this.#received(c, m as unknown[]), () => this.#end(c));
    } catch {
      this.#end(c);
    }
  }

  /** A client is gone (EOF: its process ended or dropped its link; or a failed read). Idempotent. */
  #end(c: ServerClient): void {
    if (!this.#clients.delete(c)) return;
    c.conn.close();
    this.#drop(c);
  }

  /** A request came from the loop: served, then (in a manager process) the next ones are polled for a while. */
  #received(c: ServerClient, m: unknown[]): void {
    if (this.#polling) {
      // Read by _serveEach while the poll below runs (it is on this stack): just serve it.
      this.#handle(c, m);
      return;
    }
    const spin = this.#spinCur;
    if (spin > 0 && this.#pollStart > 0) {
      // The poll that ended before this request came had spun `spin`: had it come within the
      // longest poll, polling that long would have caught it; else poll less (a slow client).
      const waited = performance.now() - this.#pollStart;
      this.#spinCur = waited <= this.#spinMax ? this.#spinMax : Math.max(this.#spinMax / 16, spin / 2);
    }
    if (m[1] === OP_DING && !this.#drainRing(c)) {
      // A doorbell for requests that a poll (or the re-check after arming) served already.
      this.#armRings();
      return;
    }
    this.#handle(c, m);
    if (this.#spinCur === 0 || !this.#poll()) this.#armRings();
  }

  /**
   * The busy-poll of a manager process: after a request, the next one usually follows within
   * microseconds (the same client's next call). Reading every client's connection without
   * waiting until none has sent anything for `spinCur` ms serves it without the loop's kernel
   * wake-up. Bounded: back to the loop for a turn after MAX_POLL_MS at most, or as soon as a call needs it
   * (a result still pending, shutdown), so timers, accepts and async results are never held up long.
   * Returns true when it goes on after a turn of the loop.
   */
  #poll(): boolean {
    if (this.#yield) {
      this.#yield = false;
      return false;
    }
    for (const c of this.#clients) c.wire?.disarmDoorbell();
    this.#polling = true;
    const start = performance.now();
    this.#pollStart = start;
    const stop = start + MAX_POLL_MS;
    let idleUntil = start + this.#spinCur;
    let busy = false;
    try {
      while (!this.#stopped) {
        let got = false;
        for (const c of this.#clients) {
          let m: unknown;
          try {
            m = c.wire ? c.wire.tryRecv() : c.conn._recvNow();
          } catch {
            this.#end(c);
            continue;
          }
          if (m === NOTHING) continue;
          got = true;
          try {
            this.#handle(c, m as unknown[]);
          } catch {
            this.#end(c); // its reply could not be sent: it is gone (not the client whose request began this poll)
          }
        }
        const t = performance.now();
        if (got) {
          if (this.#yield) break;
          idleUntil = t + this.#spinCur;
          this.#pollStart = t;
        } else if (this.#sharesCpu()) {
          break; // a client waits on this CPU: polling would only keep it from running
        } else if (t - this.#pollStart >= YIELD_AFTER_MS) {
          // Nothing for a while: a client may be queued behind us on this CPU.
          native.yieldCpu();
        }
        if (t >= idleUntil) break;
        if (t >= stop) {
          busy = true;
          break;
        }
      }
    } finally {
      this.#polling = false;
      this.#yield = false;
    }
    // Still serving after MAX_POLL_MS: let the loop run one turn (it does not sleep while an
    // immediate is pending), then poll on, rather than wait for the next request's wake-up.
    if (busy && !this.#stopped) {
      setImmediate(() => {
        if (!this.#polling && !this.#stopped && !this.#poll()) this.#armRings();
      });
      return true;
    }
    return false;
  }

  /** Says where we poll to every ring client; whether one of them last waited on this CPU (RingDuplex.sharesCpu). */
  #sharesCpu(): boolean {
    let cpu = -2; // asked once, and only if a client is on rings
    let shared = false;
    for (const c of this.#clients) {
      if (!c.wire) continue;
      if (cpu === -2) cpu = native.getcpu();
      if (c.wire.sharesCpu(cpu)) shared = true;
    }
    return shared;
  }

  /**
   * The loop is about to sleep: every ring client's doorbell is armed (its next request rings our
   * eventfd, which wakes the loop), and what came before it was armed is served now.
   */
  #armRings(): void {
    if (this.#stopped) return;
    for (const c of this.#clients) {
      const wire = c.wire;
      if (!wire) continue;
      while (wire.armDoorbell() && this.#drainRing(c));
    }
  }

  /** Serves the requests in `c`'s ring now; false when there were none (or `c` ended). */
  #drainRing(c: ServerClient): boolean {
    const wire = c.wire;
    if (!wire) return false;
    let served = false;
    for (;;) {
      let m: unknown;
      try {
        m = wire.tryRecv();
        if (m === NOTHING) return served;
        this.#handle(c, m as unknown[]);
      } catch {
        this.#end(c); // a request that did not decode, or a reply that could not go
        return false;
      }
      served = true;
      if (!this.#clients.has(c)) return false;
    }
  }

  #handle(c: ServerClient, m: unknown[]): void {
    const reqId = m[0] as number;
    try {
      switch (m[1]) {
        case OP_CALL:
          return this.#call(c, reqId, m[2] as number, m[3] as string, m[4] as unknown[]);
        case OP_CREATE:
          return this.#create(c, reqId, m[2] as string, m[3] as unknown[]);
        case OP_INCREF: {
          const e = this.#entry(m[2] as number);
          e.refs++;
          (e.transit ??= new Map()).set(c, (e.transit.get(c) ?? 0) + 1);
          return;
        }
        case OP_CLAIM:
          return this.#claim(c, m[2] as number);
        case OP_DECREF:
          for (const id of m[2] as number[]) this.#decref(c, id);
          return;
        case OP_SHUTDOWN:
          this.#yield = true;
          this.#reply(c, reqId, ST_OK, undefined);
          // After the reply has gone out.
          setImmediate(() => this.shutdown());
          return;
        case OP_RINGS:
          return this.#useRings(c, m[2] as SimpleQueue, m[3] as SimpleQueue, m[4] as Doorbell, m[5] as Doorbell);
        case OP_DING:
          return; // served by #received
        case OP_INFO:
          return this.#reply(c, reqId, ST_OK, { pid: process.pid, objects: this.#objects.size, typeids: [...this.#types.keys()] } satisfies ServerInfo);
        default:
          throw new Error(`unknown request ${String(m[1])}`);
      }
    } catch (e) {
      this.#reply(c, reqId, ST_ERROR, errorInfo(e));
    }
  }

  #entry(id: number): Entry {
    const e = this.#objects.get(id);
    if (!e) throw pyError('KeyError', `no shared object with id ${id} in the manager at ${this.#where}: every proxy of it was dropped, or the server was restarted`);
    return e;
  }

  #call(c: ServerClient, reqId: number, id: number, method: string, args: unknown[]): void {
    const e = this.#entry(id);
    if (!e.exposed.has(method)) {
      throw pyError('AttributeError', `method '${method}' of ${e.typeid} object is not exposed (exposed: ${e.exposedList.join(', ') || 'none'})`);
    }
    const obj = e.obj as Record<string, unknown>;
    const fn = obj[method];
    let r: unknown;
    if (typeof fn === 'function') r = asCallOf(c, () => fn.apply(obj, args));
    else if (args.length === 0) r = fn; // an exposed attribute: its value (Python's __getattribute__)
    else throw pyError('TypeError', `'${method}' of ${e.typeid} object is an attribute, not a method`);
    const tid = e.methodToTypeid?.[method];
    if (isThenable(r)) {
      this.#yield = true;
      r.then(
        (v) => this.#result(c, reqId, tid, v),
        (err) => this.#reply(c, reqId, ST_ERROR, errorInfo(err)),
      );
    } else {
      this.#result(c, reqId, tid, r);
    }
  }

  #result(c: ServerClient, reqId: number, typeid: string | undefined, v: unknown): void {
    if (typeid === undefined) this.#reply(c, reqId, ST_OK, sendable(v));
    else this.#reply(c, reqId, ST_PROXY, this.#register(c, typeid, v));
  }

  #create(c: ServerClient, reqId: number, typeid: string, args: unknown[]): void {
    const t = this.#types.get(typeid);
    if (!t) throw pyError('KeyError', `the manager at ${this.#where} has no type '${typeid}' (it knows: ${[...this.#types.keys()].join(', ')})`);
    if (!t.create) throw pyError('TypeError', `type '${typeid}' was registered without a callable in the server; register it there with one`);
    const make = t.create;
    const r = asCallOf(c, () => (isClass(make) ? new (make as unknown as new (...a: unknown[]) => unknown)(...args) : make(...args)));
    if (isThenable(r)) {
      this.#yield = true;
      r.then(
        (obj) => this.#reply(c, reqId, ST_PROXY, this.#register(c, typeid, obj)),
        (err) => this.#reply(c, reqId, ST_ERROR, errorInfo(err)),
      );
    } else {
      this.#reply(c, reqId, ST_PROXY, this.#register(c, typeid, r));
    }
  }

  /** Holds `obj` for `c` (one reference) and returns its token. */
  #register(c: ServerClient, typeid: string, obj: unknown): Token {
    const t = this.#types.get(typeid);
    const exposedList = [...(t?.exposed ?? publicMethods(obj))];
    const id = this.#nextId++;
    this.#objects.set(id, { obj, typeid, exposed: new Set(exposedList), exposedList, methodToTypeid: t?.methodToTypeid ?? null, refs: 1, transit: null });
    c.refs.set(id, 1);
    return { typeid, id, address: this.address, exposed: exposedList };
  }

  /** A proxy arrived in `c`'s process: the reference its sender made for the journey is now `c`'s. */
  #claim(c: ServerClient, id: number): void {
    const e = this.#objects.get(id);
    if (!e) return; // gone: its calls will say so
    let moved = false;
    if (e.transit) {
      for (const [from, n] of e.transit) {
        if (n > 1) e.transit.set(from, n - 1);
        else e.transit.delete(from);
        moved = true;
        break;
      }
      if (e.transit.size === 0) e.transit = null;
    }
    if (!moved) e.refs++; // it arrived before its sender's incref (or was sent from here): a new reference
    c.refs.set(id, (c.refs.get(id) ?? 0) + 1);
  }

  #decref(c: ServerClient, id: number, n = 1): void {
    const held = c.refs.get(id) ?? 0;
    if (held === 0) return;
    if (held > n) c.refs.set(id, held - n);
    else c.refs.delete(id);
    this.#release(id, Math.min(n, held));
  }

  #release(id: number, n: number): void {
    const e = this.#objects.get(id);
    if (!e) return;
    e.refs -= n;
    if (e.refs <= 0) {
      this.#objects.delete(id);
      void disposeReferent(e.obj);
    }
  }

  /** A client went away: its references go, its waits end; proxies it had sent on keep theirs a while. */
  #drop(c: ServerClient): void {
    c.gone();
    for (const [id, n] of c.refs) this.#release(id, n);
    c.refs.clear();
    for (const [id, e] of this.#objects) {
      const n = e.transit?.get(c);
      if (!n) continue;
      e.transit!.delete(c);
      if (e.transit!.size === 0) e.transit = null;
      setTimeout(() => this.#release(id, n), TRANSIT_GRACE_MS).unref();
    }
  }

  #reply(c: ServerClient, reqId: number, status: number, value: unknown): void {
    if (reqId === 0 || c.conn.closed) return;
    const out = c.wire ?? c.conn;
    try {
      out.send([reqId, status, value]);
    } catch (e) {
      if (c.conn.closed) return;
      // The result cannot travel (a function, a socket…): say so instead.
      out.send([reqId, ST_ERROR, errorInfo(new TypeError(`the result cannot be sent back: ${(e as Error).message.replace(/^Connection\.send: /, '').replace(/\bmsg\[2\]/g, 'result')}`))]);
    }
  }

  /**
   * The client's requests come on the first ring from now on, and replies go on the second
   * (lib/manager-client.ts); its socket carries nothing more but, at the end, the EOF. The rings
   * are read by the busy-poll while it runs, and when the client rings our doorbell (it does
   * when it finds the doorbell armed: #armRings, as the loop goes to sleep).
   */
  #useRings(c: ServerClient, requests: SimpleQueue, replies: SimpleQueue, ours: Doorbell, theirs: Doorbell): void {
    c.queues = [requests, replies];
    c.bells = [ours, theirs];
    const wire = (c.wire = new RingDuplex(ringOf(replies), ringOf(requests), 'Connection.send'));
    wire.onDoorbell = () => theirs.ring();
    ours.listen(() => this.#received(c, DING));
    this.#drainRing(c); // what it put before this message; #received arms the doorbell after
  }
}

// ---- a manager process ----

/** What a manager process needs to serve: its types (callables as targets), address and key. */
export interface ServerConfig {
  types: { typeid: string; create: TargetDesc | { builtin: string } | null; exposed: string[] | null; methodToTypeid: Record<string, string> | null }[];
  address: Address | undefined;
  authkey: Buffer;
  spinMs: number | undefined;
  entry: string;
  initializer: TargetDesc | null;
  initargs: unknown[];
}

/** Factories of the SyncManager types, by name (lib/managers.ts fills this in). */
export const builtinTypes = new Map<string, ServedType>();

/**
 * The target of a manager process: builds the server, tells the parent its address on `conn`,
 * serves until shutdown. Python's BaseManager._run_server.
 */
export async function runManagerServer(conn: Connection, cfg: ServerConfig): Promise<void> {
  let server: ManagerServer;
  try {
    await import('./managers.js'); // the SyncManager types (and proxies, for nested ones)
    if (cfg.initializer) await (await loadTarget(cfg.initializer, cfg.entry))(...cfg.initargs);
    const types = new Map<string, ServedType>();
    for (const t of cfg.types) {
      let create: ServedType['create'] = null;
      if (t.create && 'builtin' in t.create) create = builtinTypes.get(t.create.builtin)?.create ?? null;
      else if (t.create) create = (await loadTarget(t.create, cfg.entry)) as ServedType['create'];
      types.set(t.typeid, { create, exposed: t.exposed, methodToTypeid: t.methodToTypeid });
    }
    server = new ManagerServer(types, { address: cfg.address, authkey: cfg.authkey, spinMs: cfg.spinMs, busyPoll: true });
  } catch (e) {
    conn.send({ error: errorInfo(e) });
    conn.close();
    return;
  }
  // Killed with SIGTERM (the owner exits): a socket file goes with us.
  process.once('SIGTERM', () => {
    server.shutdown();
    process.kill(process.pid, 'SIGTERM');
  });
  conn.send({ address: server.address, pid: process.pid });
  conn.close();
  await server.serveForever();
}
