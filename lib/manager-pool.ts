// A Pool held by a manager server (Python's `manager.Pool()`): the server-side object that owns a
// real Pool in the manager process, and PoolProxy, which sends it targets and data from anywhere.
import { BaseProxy, registerProxyKind } from './manager-client.js';
import { AsyncResult, Pool, kPoolEntry, type ApplyOptions, type MapOptions, type MapAsyncOptions } from './pool.js';
import { describeTarget, loadTarget, type Target, type TargetDesc } from './target.js';
import { RemoteError } from './errors.js';

/** What `SyncManager.Pool()` sends to the server besides the size. */
export interface ManagerPoolConfig {
  initializer: TargetDesc | null;
  initargs: unknown[];
  maxtasksperchild: number | null;
  /** The creating process's entry module: the workers resolve the targets' imports from it. */
  entry: string;
}

/** The methods a PoolProxy may call. */
export const POOL_EXPOSED = ['apply', 'map', 'starmap', 'imap', 'imapUnordered', 'close', 'terminate', 'join'];

/**
 * The referent of a manager Pool: a Pool in the manager process whose targets arrive as
 * descriptions (describeTarget) and are loaded here. The server disposes of it (terminate)
 * when the last proxy is dropped or the manager shuts down.
 */
export class SharedPool {
  readonly #pool: Pool;
  readonly #entry: string;

  static async create(processes: number | null, cfg: ManagerPoolConfig): Promise<SharedPool> {
    const initializer = cfg.initializer ? await asTarget(cfg.initializer, cfg.entry) : undefined;
    return new SharedPool(new Pool({
      ...(processes !== null && processes !== undefined && { processes }),
      initializer, initargs: cfg.initargs ?? [], maxtasksperchild: cfg.maxtasksperchild ?? null, [kPoolEntry]: cfg.entry,
    }), cfg.entry);
  }

  private constructor(pool: Pool, entry: string) {
    this.#pool = pool;
    this.#entry = entry;
  }

  async apply(fn: TargetDesc, args: unknown[]): Promise<unknown> {
    return this.#pool.apply(await asTarget(fn, this.#entry), args);
  }

  async map(fn: TargetDesc, items: unknown[], opts?: MapOptions): Promise<unknown[]> {
    return this.#pool.map(await asTarget(fn, this.#entry), items, opts ?? {});
  }

  async starmap(fn: TargetDesc, items: unknown[][], opts?: MapOptions): Promise<unknown[]> {
    return this.#pool.starmap(await asTarget(fn, this.#entry), items, opts ?? {});
  }

  async imap(fn: TargetDesc, items: unknown[], opts?: MapOptions): Promise<unknown[]> {
    return collect(this.#pool.imap(await asTarget(fn, this.#entry), items, opts ?? {}));
  }

  async imapUnordered(fn: TargetDesc, items: unknown[], opts?: MapOptions): Promise<unknown[]> {
    return collect(this.#pool.imapUnordered(await asTarget(fn, this.#entry), items, opts ?? {}));
  }

  close(): void {
    this.#pool.close();
  }

  terminate(): Promise<void> {
    return this.#pool.terminate();
  }

  join(): Promise<void> {
    return this.#pool.join();
  }

  /** The server calls this when the last proxy is gone or it shuts down: the workers end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#pool.terminate();
  }
}

/** A Target again, for the Pool: a function compiled from its source, or the module export it names. */
async function asTarget(d: TargetDesc, entry: string): Promise<Target> {
  if (d.kind === 'module') return { module: d.specifier, name: d.name };
  return (await loadTarget(d, entry)) as Target;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function collectInput<T>(iterable: Iterable<T> | AsyncIterable<T>, what: string): Promise<T[]> {
  if (iterable && typeof (iterable as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') {
    const out: T[] = [];
    for await (const x of iterable as AsyncIterable<T>) out.push(x);
    return out;
  }
  return syncInput(iterable as Iterable<T>, what);
}

function syncInput<T>(iterable: Iterable<T>, what: string): T[] {
  if (!iterable || typeof (iterable as Iterable<T>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`${what}: expected an iterable of task inputs, got ${iterable === null ? 'null' : typeof iterable}`);
  }
  return [...iterable];
}

type AnyFn = (...args: any[]) => unknown;
type ResultOf<F> = F extends AnyFn ? Awaited<ReturnType<F>> : any;
type ArgsOf<F> = F extends AnyFn ? Parameters<F> : unknown[];
type ItemOf<F> = F extends AnyFn ? Parameters<F>[0] : unknown;
type Input<T> = Iterable<T> | AsyncIterable<T>;

/**
 * A task's error as the local Pool gives it: its own name and message (the manager's RemoteError,
 * whose cause holds the stack from the manager process, becomes the cause).
 */
function taskError(e: unknown): unknown {
  if (!(e instanceof RemoteError) || !(e.cause instanceof Error)) return e;
  const err = new Error(e.cause.message, { cause: e });
  err.name = e.cause.name;
  return err;
}

/**
 * Proxy of a Pool in a manager process (Python's `manager.Pool()`): the Pool API, every call a
 * Promise. Targets are sent by description (a self-contained function or `{ module, name }`);
 * task errors reject with the task's error name and message. The input is read here, in full,
 * before it is sent; `imap`/`imapUnordered` resolve to the collected results (in order /
 * completion order). The pool is terminated when its last proxy is dropped or the manager shuts down.
 */
export class PoolProxy extends BaseProxy {
  #call(method: string, args: unknown[]): Promise<any> {
    return this._callMethod(method, args).catch((e) => {
      throw taskError(e);
    });
  }

  #callSync(method: string, args: unknown[]): any {
    try {
      return this._callMethodSync(method, args);
    } catch (e) {
      throw taskError(e);
    }
  }

  #fn(fn: Target, method: string): TargetDesc {
    return describeTarget(fn, `PoolProxy.${method}`);
  }

  /** Runs `fn(...args)` in a worker of the manager's pool; resolves to its result. */
  apply<F extends Target>(fn: F, args: ArgsOf<F> | unknown[] = []): Promise<ResultOf<F>> {
    try {
      return this.#call('apply', [this.#fn(fn, 'apply'), syncInput(args, 'PoolProxy.apply(args)')]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  applySync<F extends Target>(fn: F, args: ArgsOf<F> | unknown[] = []): ResultOf<F> {
    return this.#callSync('apply', [this.#fn(fn, 'applySync'), syncInput(args, 'PoolProxy.applySync(args)')]);
  }

  map<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapOptions): Promise<ResultOf<F>[]> {
    return this.#mapLike('map', fn, iterable, options);
  }

  mapSync<F extends Target>(fn: F, iterable: Iterable<ItemOf<F>>, options?: MapOptions): ResultOf<F>[] {
    return this.#callSync('map', [this.#fn(fn, 'mapSync'), syncInput(iterable, 'PoolProxy.mapSync'), options ?? {}]);
  }

  starmap<F extends Target>(fn: F, iterable: Input<ArgsOf<F>>, options?: MapOptions): Promise<ResultOf<F>[]> {
    return this.#mapLike('starmap', fn, iterable, options);
  }

  starmapSync<F extends Target>(fn: F, iterable: Iterable<ArgsOf<F>>, options?: MapOptions): ResultOf<F>[] {
    return this.#callSync('starmap', [this.#fn(fn, 'starmapSync'), syncInput(iterable, 'PoolProxy.starmapSync'), options ?? {}]);
  }

  /** The results in input order, collected (Python's proxy returns an iterator over the same). */
  imap<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapOptions): Promise<ResultOf<F>[]> {
    return this.#mapLike('imap', fn, iterable, options);
  }

  /** The results in the order the tasks finished, collected. */
  imapUnordered<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options?: MapOptions): Promise<ResultOf<F>[]> {
    return this.#mapLike('imapUnordered', fn, iterable, options);
  }

  /** apply() as an AsyncResult (get/wait/ready/successful, callbacks run in this process). */
  applyAsync<F extends Target>(fn: F, args: ArgsOf<F> | unknown[] = [], options: ApplyOptions<ResultOf<F>> = {}): AsyncResult<ResultOf<F>> {
    return asAsyncResult(options, 'applyAsync', () => this.apply(fn, args));
  }

  mapAsync<F extends Target>(fn: F, iterable: Input<ItemOf<F>>, options: MapAsyncOptions<ResultOf<F>[]> = {}): AsyncResult<ResultOf<F>[]> {
    return asAsyncResult(options, 'mapAsync', () => this.map(fn, iterable, mapOptions(options)));
  }

  starmapAsync<F extends Target>(fn: F, iterable: Input<ArgsOf<F>>, options: MapAsyncOptions<ResultOf<F>[]> = {}): AsyncResult<ResultOf<F>[]> {
    return asAsyncResult(options, 'starmapAsync', () => this.starmap(fn, iterable, mapOptions(options)));
  }

  /** No more tasks; the workers exit once the submitted work is done. */
  close(): Promise<void> { return this.#call('close', []); }
  closeSync(): void { return this.#callSync('close', []); }
  /** Ends the workers now; unfinished results reject. */
  terminate(): Promise<void> { return this.#call('terminate', []); }
  terminateSync(): void { return this.#callSync('terminate', []); }
  /** Resolves once the work is done and the workers have ended; close() or terminate() first. */
  join(): Promise<void> { return this.#call('join', []); }
  joinSync(): void { return this.#callSync('join', []); }

  /** Python's `with manager.Pool() as p:` ends with terminate(): so does `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.terminate();
  }

  async #mapLike(method: string, fn: Target, iterable: Input<unknown>, options?: MapOptions): Promise<any> {
    const desc = this.#fn(fn, method);
    const items = await collectInput(iterable, `PoolProxy.${method}`);
    return this.#call(method, [desc, items, options ?? {}]);
  }
}

function mapOptions(o: MapOptions): MapOptions {
  return o.chunksize === undefined ? {} : { chunksize: o.chunksize };
}

function asAsyncResult<R>(options: ApplyOptions<R>, method: string, run: () => Promise<R>): AsyncResult<R> {
  const { callback, errorCallback } = options ?? {};
  if (callback !== undefined && typeof callback !== 'function') throw new TypeError(`PoolProxy.${method}: callback must be a function`);
  if (errorCallback !== undefined && typeof errorCallback !== 'function') throw new TypeError(`PoolProxy.${method}: errorCallback must be a function`);
  const r = new AsyncResult<R>(callback, errorCallback);
  run().then((v) => r._resolve(v), (e) => r._reject(e));
  return r;
}

registerProxyKind('PoolProxy', PoolProxy);
