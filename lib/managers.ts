// Managers (API.md, Managers): BaseManager and its register(), SyncManager with Python's shared
// types, Manager(), and the proxy classes of those types. The server side is lib/manager-server.ts.
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { Pipe } from './connection.js';
import { Process } from './process.js';
import { describeTarget, entryUrl, type Target, type TargetDesc } from './target.js';
import { formatAddress, type Address, type AuthKey } from './listener.js';
import type { SocketAddress } from './native.js';
import {
  BaseProxy, call, dropLink, linkFor, registerProxyKind, setProxyType, OP_CREATE, OP_INFO, OP_SHUTDOWN,
  type Access, type ServerInfo, type Token,
} from './manager-client.js';
import { ManagerServer, builtinTypes, type ServedType, type ServerConfig } from './manager-server.js';
import {
  SharedArrayObject, SharedBarrier, SharedBoundedSemaphore, SharedCondition, SharedDict, SharedEvent,
  SharedJoinableQueue, SharedList, SharedLock, SharedNamespace, SharedQueue, SharedRLock, SharedSemaphore,
  SharedValue,
} from './manager-objects.js';
import { loadTarget } from './target.js';
import { POOL_EXPOSED, PoolProxy, SharedPool, type ManagerPoolConfig } from './manager-pool.js';

export { BaseProxy } from './manager-client.js';
export * from './manager-proxies.js';
export { PoolProxy } from './manager-pool.js';
import {
  AcquirerProxy, ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy,
  ListProxy, LockProxy, NamespaceProxy, QueueProxy, SemaphoreProxy, ValueProxy,
} from './manager-proxies.js';
export type { Token } from './manager-client.js';
export { ManagerServer } from './manager-server.js';

// The manager process runs the built server module; from the TypeScript sources (the test suite)
// that is the one in dist/.
const here = fileURLToPath(import.meta.url);
const SERVER_MODULE = pathToFileURL(here.endsWith('.ts') ? join(dirname(here), '..', 'dist', 'manager-server.js') : join(dirname(here), 'manager-server.js')).href;

type ProxyClass = new (token: Token, access: Access, owned?: boolean) => BaseProxy;

export interface RegisterOptions {
  /** Methods proxies may call (default: the object's public methods, those not starting with '_'). */
  exposed?: readonly string[] | null;
  /** The proxy class (default: an AutoProxy with the exposed methods). */
  proxytype?: ProxyClass | null;
  /** Methods whose result is shared in turn, returned as a proxy of the given typeid. */
  methodToTypeid?: Readonly<Record<string, string>> | null;
  /** Add a method named `typeid` to the manager (default true). */
  createMethod?: boolean;
}

interface TypeEntry {
  callable: Target | { builtin: string } | null;
  exposed: readonly string[] | null;
  methodToTypeid: Readonly<Record<string, string>> | null;
  proxytype: ProxyClass | null;
}

export interface BaseManagerOptions {
  /** Where the server listens: a socket path or [host, port] (default: a fresh AF_UNIX address). */
  address?: Address;
  /** The key clients must hold (default: random, carried by the proxies this manager makes). */
  authkey?: AuthKey;
  /** How long shutdown() waits for the server process to end before terminating it, in ms (default 1000). */
  shutdownTimeout?: number;
  /**
   * How long a receive spins before it sleeps, on the server's connections and on this
   * process's (and, carried by the proxies, other processes') connections to it: the
   * Connection option (default its default; 0 suits a machine whose CPUs are busy).
   */
  spinMs?: number;
}

let managerCount = 0;

function keyOf(authkey: AuthKey | undefined): Buffer {
  if (authkey === undefined) return randomBytes(32);
  if (typeof authkey === 'string') return Buffer.from(authkey, 'utf8');
  if (authkey instanceof Uint8Array) return Buffer.from(authkey);
  throw new TypeError(`BaseManager: authkey must be a Buffer, a Uint8Array or a string, got ${typeof authkey}`);
}

/** A fresh address for a manager that was given none: a Linux abstract name (no file to leave behind), else a path. */
function arbitraryAddress(): string {
  const name = `multiproc-manager-${process.pid}-${randomBytes(6).toString('hex')}`;
  return process.platform === 'linux' ? `\0${name}` : join(tmpdir(), name);
}

type State = 'initial' | 'started' | 'connected' | 'shutdown';

/**
 * Python's BaseManager: a server of shared objects, started in a new process (`start()`), served
 * here (`getServer().serveForever()`), or reached from anywhere (`connect()`). Subclass it and
 * `register()` the types it serves; each typeid becomes a method that returns a proxy.
 */
export class BaseManager {
  static _registry: Map<string, TypeEntry> = new Map();

  /**
   * Registers `typeid`: in the process that serves, `callable` makes its objects (a function or
   * class, sent to a manager process as a Target: self-contained, or `{ module, name }`); where
   * it is only used, register it without one.
   */
  static register(typeid: string, callable?: Target | null, options: RegisterOptions = {}): void {
    if (typeof typeid !== 'string' || !typeid) throw new TypeError('BaseManager.register: typeid must be a non-empty string');
    if (callable !== undefined && callable !== null) describeCallable(callable, `${this.name}.register('${typeid}')`); // checks it now
    if (!Object.hasOwn(this, '_registry')) this._registry = new Map(this._registry);
    const { exposed = null, proxytype = null, methodToTypeid = null, createMethod = true } = options ?? {};
    if (exposed !== null && (!Array.isArray(exposed) || exposed.some((m) => typeof m !== 'string'))) {
      throw new TypeError(`${this.name}.register('${typeid}'): exposed must be an array of method names`);
    }
    if (proxytype !== null && !(proxytype.prototype instanceof BaseProxy)) {
      throw new TypeError(`${this.name}.register('${typeid}'): proxytype must be a class extending BaseProxy`);
    }
    this._registry.set(typeid, { callable: callable ?? null, exposed, methodToTypeid, proxytype });
    if (proxytype) {
      setProxyType(typeid, proxytype);
      registerProxyKind(`${typeid}:${proxytype.name}`, proxytype);
    }
    if (createMethod) {
      Object.defineProperty(this.prototype, typeid, {
        value: function (this: BaseManager, ...args: unknown[]) {
          return this._create(typeid, args);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  readonly #authkey: Buffer;
  readonly #access: Access;
  #address: SocketAddress | Address | undefined;
  #state: State = 'initial';
  #process: Process | null = null;
  #server: ManagerServer | null = null;
  readonly #shutdownTimeout: number;

  constructor(options: BaseManagerOptions = {}) {
    if (!options || typeof options !== 'object') throw new TypeError(`${new.target.name}: expected an options object { address?, authkey? }`);
    this.#authkey = keyOf(options.authkey);
    if (options.spinMs !== undefined && (typeof options.spinMs !== 'number' || !(options.spinMs >= 0))) {
      throw new TypeError(`${new.target.name}: spinMs must be a number of milliseconds >= 0, got ${String(options.spinMs)}`);
    }
    this.#access = { authkey: this.#authkey, ...(options.spinMs !== undefined && { spinMs: options.spinMs }) };
    this.#address = options.address;
    this.#shutdownTimeout = options.shutdownTimeout ?? 1000;
  }

  /** The server's address (the real port once started or served, for port 0). */
  get address(): SocketAddress | Address | undefined {
    return this.#address;
  }

  /** The authkey clients must hold. */
  get authkey(): Buffer {
    return Buffer.from(this.#authkey);
  }

  /** @internal */
  get _state(): State {
    return this.#state;
  }

  /** Starts the server in a new (daemon) process that dies with this one. Python's `start`. */
  async start(initializer?: Target | null, initargs: unknown[] = []): Promise<void> {
    const name = this.constructor.name;
    if (this.#state !== 'initial') throw new Error(`${name}.start: the manager was already ${this.#state === 'started' ? 'started' : this.#state === 'connected' ? 'connected' : 'shut down'}`);
    const cfg: ServerConfig = {
      types: [...(this.constructor as typeof BaseManager)._registry].map(([typeid, t]) => ({
        typeid,
        create: describeCallable(t.callable, `${name}.register('${typeid}')`),
        exposed: t.exposed ? [...t.exposed] : null,
        methodToTypeid: t.methodToTypeid ? { ...t.methodToTypeid } : null,
      })),
      address: this.#address ?? arbitraryAddress(),
      authkey: this.#authkey,
      spinMs: this.#access.spinMs,
      entry: entryUrl(),
      initializer: initializer ? describeTarget(initializer, `${name}.start(initializer)`) : null,
      initargs,
    };
    const [ours, theirs] = Pipe();
    const p = new Process({ target: { module: SERVER_MODULE, name: 'runManagerServer' }, args: [theirs, cfg], name: `${name}-${++managerCount}`, daemon: true });
    this.#state = 'started';
    try {
      p.start();
    } catch (e) {
      this.#state = 'initial';
      throw e;
    } finally {
      theirs.close();
    }
    let reply: { address?: SocketAddress; error?: { name: string; message: string; stack?: string } };
    try {
      reply = (await ours.recv()) as typeof reply;
    } catch {
      await p.join(1000);
      this.#state = 'initial';
      throw new Error(`${name}.start: the manager process ${p.name} ended (exit code ${p.exitCode}) before it was ready; see its stderr`);
    } finally {
      ours.close();
    }
    if (reply.error) {
      await p.join(this.#shutdownTimeout);
      this.#state = 'initial';
      const cause = Object.assign(new Error(reply.error.message), { name: reply.error.name, stack: reply.error.stack });
      throw new Error(`${name}.start: the manager process could not start serving: ${reply.error.name}: ${reply.error.message}`, { cause });
    }
    this.#address = reply.address!;
    this.#process = p;
  }

  /** Connects to a server started elsewhere (another process, another machine) at `address`. */
  async connect(): Promise<void> {
    const name = this.constructor.name;
    if (this.#state !== 'initial') throw new Error(`${name}.connect: the manager is already ${this.#state}`);
    if (this.#address === undefined) throw new TypeError(`${name}.connect: give the server's address: new ${name}({ address, authkey })`);
    await call(linkFor(this.#address as SocketAddress, this.#access), [0, OP_INFO], `${name}.connect`);
    this.#state = 'connected';
  }

  /** A server for this manager's types in this process: `await getServer().serveForever()`. */
  getServer(): ManagerServer {
    const name = this.constructor.name;
    if (this.#state !== 'initial') throw new Error(`${name}.getServer: the manager is already ${this.#state}`);
    const types = new Map<string, ServedType>();
    for (const [typeid, t] of (this.constructor as typeof BaseManager)._registry) {
      let create: ServedType['create'] = null;
      if (t.callable && 'builtin' in t.callable) create = builtinTypes.get(t.callable.builtin)!.create;
      else if (typeof t.callable === 'function') create = t.callable;
      else if (t.callable) create = lazyModuleCallable(t.callable as { module: string | URL; name: string }, `${name}.register('${typeid}')`);
      types.set(typeid, { create, exposed: t.exposed, methodToTypeid: t.methodToTypeid });
    }
    const server = new ManagerServer(types, { address: this.#address, authkey: this.#authkey, spinMs: this.#access.spinMs });
    this.#address = server.address;
    this.#server = server;
    return server;
  }

  /**
   * Stops the server: a started one's process ends (terminated if it does not within
   * shutdownTimeout); a connected manager asks the server to stop. Proxies fail from then on.
   */
  async shutdown(): Promise<void> {
    const state = this.#state;
    if (state === 'shutdown' || state === 'initial' && !this.#server) return;
    this.#state = 'shutdown';
    if (this.#server) {
      this.#server.shutdown();
      return;
    }
    const address = this.#address as SocketAddress;
    try {
      await call(linkFor(address, this.#access), [0, OP_SHUTDOWN], `${this.constructor.name}.shutdown`);
    } catch {
      // already gone
    }
    dropLink(address);
    const p = this.#process;
    if (p) {
      await p.join(this.#shutdownTimeout);
      if (p.exitCode === null) {
        p.terminate();
        await p.join(this.#shutdownTimeout);
        if (p.exitCode === null) p.kill();
        await p.join();
      }
      p.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /** How many shared objects the server holds (Python's `_number_of_objects`; for tests and debugging). */
  async _numberOfObjects(): Promise<number> {
    return (await this._serverInfo()).objects;
  }

  /** The server's pid, object count and typeids (for tests and debugging). */
  async _serverInfo(): Promise<ServerInfo> {
    return (await call(this.#link('_serverInfo'), [0, OP_INFO], `${this.constructor.name}._serverInfo`)) as ServerInfo;
  }

  /** @internal A new shared object of `typeid`, as its proxy. */
  _create(typeid: string, args: unknown[]): Promise<any> {
    try {
      return call(this.#link(typeid), [0, OP_CREATE, typeid, args], `${this.constructor.name}.${typeid}`);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #link(method: string) {
    const name = this.constructor.name;
    if (this.#state === 'initial' && this.#server) return linkFor(this.#server.address, this.#access);
    if (this.#state === 'initial') throw new Error(`${name}.${method}: the manager is not running: call start() or connect() first`);
    if (this.#state === 'shutdown') throw new Error(`${name}.${method}: the manager at ${formatAddress(this.#address as SocketAddress)} was shut down`);
    return linkFor(this.#address as SocketAddress, this.#access);
  }
}

function describeCallable(c: TypeEntry['callable'], what: string): TargetDesc | { builtin: string } | null {
  if (c === null) return null;
  if (typeof c === 'object' && 'builtin' in c) return { builtin: c.builtin };
  if (typeof c === 'function' && /^class\b/.test(Function.prototype.toString.call(c))) {
    // A class travels as a function that constructs it (so it must be self-contained, as a function target).
    const wrapper = new Function('...args', `return new (${Function.prototype.toString.call(c)})(...args);`);
    Object.defineProperty(wrapper, 'name', { value: c.name });
    return describeTarget(wrapper as Target & Function, what);
  }
  return describeTarget(c as Target, what);
}

function lazyModuleCallable(t: { module: string | URL; name: string }, what: string): (...args: unknown[]) => Promise<unknown> {
  const desc = describeTarget(t, what);
  let fn: Promise<Function> | null = null;
  return async (...args) => {
    const f = await (fn ??= loadTarget(desc, entryUrl()));
    return /^class\b/.test(Function.prototype.toString.call(f)) ? new (f as new (...a: unknown[]) => unknown)(...args) : f(...args);
  };
}

// ---- SyncManager's types: server factory, proxy, exposed methods ----

const ACQUIRER = ['acquire', 'release'];
const SYNC_TYPES: [string, ServedType['create'], ProxyClass, string[]][] = [
  ['dict', (init?: unknown) => new SharedDict(init), DictProxy, ['get', 'set', 'delete', 'has', 'keys', 'values', 'items', 'len', 'copy', 'pop', 'popitem', 'setdefault', 'update', 'clear']],
  ['list', (init?: Iterable<unknown>) => new SharedList(init), ListProxy, ['append', 'extend', 'get', 'set', 'delete', 'pop', 'insert', 'remove', 'index', 'count', 'len', 'slice', 'copy', 'reverse', 'sort', 'clear']],
  ['Namespace', (init?: Record<string, unknown>) => new SharedNamespace(init), NamespaceProxy, ['get', 'set', 'delete', 'has', 'toObject']],
  ['Queue', (maxsize?: number) => new SharedQueue(maxsize), QueueProxy, ['put', 'putNowait', 'get', 'getNowait', 'qsize', 'empty', 'full']],
  ['JoinableQueue', (maxsize?: number) => new SharedJoinableQueue(maxsize), JoinableQueueProxy, ['put', 'putNowait', 'get', 'getNowait', 'qsize', 'empty', 'full', 'taskDone', 'join']],
  ['Lock', () => new SharedLock(), LockProxy, [...ACQUIRER, 'locked']],
  ['RLock', () => new SharedRLock(), AcquirerProxy, ACQUIRER],
  ['Semaphore', (n?: number) => new SharedSemaphore(n), SemaphoreProxy, [...ACQUIRER, 'getValue']],
  ['BoundedSemaphore', (n?: number) => new SharedBoundedSemaphore(n), SemaphoreProxy, [...ACQUIRER, 'getValue']],
  ['Condition', () => new SharedCondition(), ConditionProxy, [...ACQUIRER, 'wait', 'notify', 'notifyAll']],
  ['Event', () => new SharedEvent(), EventProxy, ['isSet', 'set', 'clear', 'wait']],
  ['Barrier', async (parties: number, opts: { action?: TargetDesc | null; timeout?: number | null; entry?: string } = {}) => {
    const action = opts.action ? await loadTarget(opts.action, opts.entry ?? entryUrl()) : null;
    return new SharedBarrier(parties, { action: action as (() => unknown) | null, timeout: opts.timeout });
  }, BarrierProxy, ['wait', 'reset', 'abort', 'parties', 'nWaiting', 'broken']],
  ['Value', (typecode: string, value: unknown) => new SharedValue(typecode, value), ValueProxy, ['get', 'set']],
  ['Array', (typecode: string, init: number | Iterable<number | bigint>) => new SharedArrayObject(typecode, init), ArrayProxy, ['len', 'get', 'set', 'toArray']],
  ['Pool', (processes: number | null, cfg: ManagerPoolConfig) => SharedPool.create(processes, cfg), PoolProxy, POOL_EXPOSED],
];

for (const [typeid, create] of SYNC_TYPES) builtinTypes.set(typeid, { create });

/**
 * Python's SyncManager: a manager whose server holds dicts, lists, namespaces, queues and the
 * synchronization primitives. `Manager()` starts one.
 */
export class SyncManager extends BaseManager {
  dict<K = any, V = any>(init?: Map<K, V> | Record<string, V> | [K, V][]): Promise<DictProxy<K, V>> { return this._create('dict', init === undefined ? [] : [init]); }
  list<T = any>(init?: Iterable<T>): Promise<ListProxy<T>> { return this._create('list', init === undefined ? [] : [[...init]]); }
  Namespace(init?: Record<string, unknown>): Promise<NamespaceProxy> { return this._create('Namespace', init === undefined ? [] : [init]); }
  Queue<T = any>(maxsize = 0): Promise<QueueProxy<T>> { return this._create('Queue', [maxsize]); }
  JoinableQueue<T = any>(maxsize = 0): Promise<JoinableQueueProxy<T>> { return this._create('JoinableQueue', [maxsize]); }
  Lock(): Promise<LockProxy> { return this._create('Lock', []); }
  RLock(): Promise<AcquirerProxy> { return this._create('RLock', []); }
  Semaphore(value = 1): Promise<SemaphoreProxy> { return this._create('Semaphore', [value]); }
  BoundedSemaphore(value = 1): Promise<SemaphoreProxy> { return this._create('BoundedSemaphore', [value]); }
  Condition(): Promise<ConditionProxy> { return this._create('Condition', []); }
  Event(): Promise<EventProxy> { return this._create('Event', []); }
  /** `action` runs in the server when the barrier trips (a Target: self-contained function or { module, name }). */
  Barrier(parties: number, opts: { action?: Target | null; timeout?: number | null } = {}): Promise<BarrierProxy> {
    let action: TargetDesc | null;
    try {
      action = opts.action ? describeTarget(opts.action, 'SyncManager.Barrier(action)') : null;
    } catch (e) {
      return Promise.reject(e);
    }
    return this._create('Barrier', [parties, { action, timeout: opts.timeout, entry: entryUrl() }]);
  }
  Value<T = any>(typecode: string, value: T): Promise<ValueProxy<T>> { return this._create('Value', [typecode, value]); }
  Array<T extends number | bigint = number>(typecode: string, init: number | Iterable<T>): Promise<ArrayProxy<T>> {
    return this._create('Array', [typecode, typeof init === 'number' ? init : [...init]]);
  }
  /**
   * A Pool of `processes` workers (default: the manager machine's CPU count) held by the manager
   * process; its proxy can be passed to other processes. Targets and initializer are Targets (a
   * self-contained function or { module, name }). Terminated when the last proxy is dropped or
   * the manager shuts down.
   */
  Pool(processes?: number | null, opts: { initializer?: Target | null; initargs?: unknown[]; maxtasksperchild?: number | null } = {}): Promise<PoolProxy> {
    let cfg: ManagerPoolConfig;
    try {
      if (!opts || typeof opts !== 'object') throw new TypeError(`SyncManager.Pool: expected options { initializer?, initargs?, maxtasksperchild? }, got ${opts === null ? 'null' : typeof opts}`);
      cfg = {
        initializer: opts.initializer ? describeTarget(opts.initializer, 'SyncManager.Pool(initializer)') : null,
        initargs: opts.initargs ?? [], maxtasksperchild: opts.maxtasksperchild ?? null, entry: entryUrl(),
      };
    } catch (e) {
      return Promise.reject(e);
    }
    return this._create('Pool', [processes ?? null, cfg]);
  }
}

for (const [typeid, , proxy, exposed] of SYNC_TYPES) {
  SyncManager.register(typeid, null, { exposed, proxytype: proxy, createMethod: false });
  SyncManager._registry.get(typeid)!.callable = { builtin: typeid };
}

/** Starts a manager server process and resolves to its SyncManager (Python's `multiprocessing.Manager()`). */
export async function Manager(options: BaseManagerOptions = {}): Promise<SyncManager> {
  const m = new SyncManager(options);
  await m.start();
  return m;
}
