// The wire between a Pool and its workers (lib/pool.ts, lib/pool-worker.ts): message layouts,
// and how an error thrown in a worker travels back as a record and becomes an Error again.
//
// Messages are encoded by the codec (so handles travel). The InitMessage goes on the worker's
// Connection; everything else on its two rings, each stream ended by a null (lib/pool-link.ts).
// Pool → worker:
//   the first message: InitMessage (below);
//   then batches, flat arrays of triples [kind, fnId, payload, kind, fnId, payload, ...]:
//     K_DEF    payload is a TargetDesc: fnId names it from now on (sent once per worker and target)
//     K_APPLY  payload is the args array: fn(...args)
//     K_ONE    payload is one item: fn(item)                    (map/imap with chunksize 1)
//     K_CHUNK  payload is an array of items: [fn(x) for x]  (map/imap chunks)
//     K_STAR   payload is an array of args arrays: [fn(...a) for a]   (starmap chunks)
// Worker → pool, a flat array whose first element says what it is:
//   [M_READY, pid, threadId]          the initializer ran; tasks are being taken
//   [M_RESULTS, status, value, µs, status, value, µs, ...]
//                                     results of the oldest unanswered tasks, in the order they
//                                     were sent (a worker runs one task at a time, in order);
//                                     status S_OK (value), S_ERROR (an ErrorRecord), S_THROWN (a
//                                     non-Error value that was thrown); µs = the task's run time
//   [M_INIT_ERROR, ErrorRecord]       the initializer threw; the worker exits
//   [M_BATCH_ERROR, ErrorRecord]      the oldest unanswered batch could not be decoded; its tasks fail
//   [M_DYING, running]                the worker is exiting (process.exit, a fatal error) with its
//                                     results flushed; running = 1 if a task was in progress: that
//                                     one failed, the tasks after it were never started
import type { TargetDesc } from './target.js';
import type { RingsWire } from './pool-link.js';

export const K_DEF = 0;
export const K_APPLY = 1;
export const K_ONE = 2;
export const K_CHUNK = 3;
export const K_STAR = 4;

export const M_READY = 0;
export const M_RESULTS = 1;
export const M_INIT_ERROR = 2;
export const M_BATCH_ERROR = 3;
export const M_DYING = 4;

/**
 * K_CHUNK payloads of at least this many numbers go to the codec as DenseNumbers (packed: 4 or 8
 * bytes a number, no per-element tags or key check; they arrive as a plain Array), and a worker
 * sends all-number chunk results back so. Not as typed arrays: a structured clone of one needs a
 * fresh ArrayBuffer on each side, and fresh memory costs page faults dearer than the copy.
 */
export const PACK_MIN = 16;

export const S_OK = 0;
export const S_ERROR = 1;
export const S_THROWN = 2;

export interface InitMessage {
  initializer: TargetDesc | null;
  initargs: unknown[];
  /** Tasks after which the worker exits (0: no limit). */
  maxtasks: number;
  /** The pool process's entry module, from which function targets' import() resolves. */
  entry: string;
  /** How the pool names this worker in messages. */
  name: string;
  /** Where the worker finds its task and result rings (lib/pool-link.ts). */
  rings: RingsWire;
}

/** An error as it travels: what is needed to rebuild one of the same name and message. */
export interface ErrorRecord {
  name: string;
  message: string;
  stack: string;
  /** Own enumerable properties (code, errno...) that could be cloned. */
  props?: Record<string, unknown>;
}

export function isErrorLike(e: unknown): e is Error {
  return e instanceof Error || (typeof e === 'object' && e !== null && typeof (e as Error).message === 'string' && typeof (e as Error).name === 'string' && 'stack' in e);
}

/** The record of `e`; `cloneable` says whether a value may travel (props that cannot are dropped). */
export function errorRecord(e: Error, cloneable: (v: unknown) => boolean): ErrorRecord {
  const rec: ErrorRecord = { name: String(e.name), message: String(e.message), stack: typeof e.stack === 'string' ? e.stack : `${e.name}: ${e.message}` };
  for (const k of Object.keys(e)) {
    if (k === 'name' || k === 'message' || k === 'stack' || k === 'cause') continue;
    const v = (e as unknown as Record<string, unknown>)[k];
    if (cloneable(v)) (rec.props ??= {})[k] = v;
  }
  return rec;
}

/** The worker's stack, as the `cause` of the error a task's result rejects with (Python's RemoteTraceback). */
export class RemoteTraceback extends Error {
  constructor(stack: string, where: string) {
    super(stack);
    this.name = 'RemoteTraceback';
    this.stack = `RemoteTraceback (${where}):\n${stack}`;
  }
}

const BUILTIN: Record<string, ErrorConstructor> = {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
};

/** An error of the record's name and message, its stack the worker's, the worker's stack again in `cause`. */
export function errorFromRecord(rec: ErrorRecord, where: string): Error {
  const C = Object.hasOwn(BUILTIN, rec.name) ? BUILTIN[rec.name]! : Error;
  const e = new C(rec.message, { cause: new RemoteTraceback(rec.stack, where) });
  if (e.name !== rec.name) Object.defineProperty(e, 'name', { value: rec.name, writable: true, configurable: true, enumerable: false });
  if (rec.props) Object.assign(e, rec.props);
  e.stack = rec.stack;
  return e;
}
