// How our objects cross into other processes (API.md convention 7): each type registers a
// reducer — how an instance becomes plain state (plus fds, which travel by SCM_RIGHTS) and
// how the other side rebuilds it. The codec consults this registry for every message.

/** Collects the fds a message carries; `addFd` returns the index the state records. */
export interface ReduceContext {
  addFd(fd: number): number;
}

/** Hands out the fds that arrived with a message; the rebuilt object owns what it takes. */
export interface RebuildContext {
  fd(index: number): number;
}

export interface Reducer<T extends object = object, S = unknown> {
  /** Name on the wire; the same on both sides. */
  readonly type: string;
  readonly cls: abstract new (...args: never[]) => T;
  /** Plain, cloneable state describing `obj` for another process. */
  reduce(obj: T, ctx: ReduceContext): S;
  rebuild(state: S, ctx: RebuildContext): T;
}

const byClass = new Map<Function, Reducer>();
const byType = new Map<string, Reducer>();

export function registerReducer<T extends object, S>(reducer: Reducer<T, S>): void {
  byClass.set(reducer.cls, reducer as unknown as Reducer);
  byType.set(reducer.type, reducer as unknown as Reducer);
}

/** The reducer of `obj`'s class (or of its nearest registered ancestor), if any. */
export function reducerOf(obj: object): Reducer | undefined {
  if (byClass.size === 0) return undefined;
  for (let p = Object.getPrototypeOf(obj); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const r = byClass.get(p.constructor);
    if (r) return r;
  }
  return undefined;
}

export function reducerNamed(type: string): Reducer {
  const r = byType.get(type);
  if (!r) throw new TypeError(`a message holds a ${type}, which this process cannot rebuild: import 'multiproc' in it first`);
  return r;
}

/** A ReduceContext that refuses fds, for channels that cannot carry them. */
export function noFds(where: string): ReduceContext {
  return {
    addFd() {
      throw new TypeError(`${where} cannot carry file descriptors: send Connections over a duplex Connection or as Process args`);
    },
  };
}

/** Collects fds for one message. */
export class FdCollector implements ReduceContext {
  readonly fds: number[] = [];
  addFd(fd: number): number {
    return this.fds.push(fd) - 1;
  }
}

// ---- the v8 fallback path ----
//
// The compact codec writes a handle as a tagged record. Messages that need v8.serialize (Maps,
// Dates, shared references…) cannot: v8 would clone a handle as a plain object of its public
// fields and lose it. For those, handles are swapped for marker records before v8 sees the
// value, and swapped back after v8.deserialize. Object identity is kept on both sides.

const MARK = '\u0000multiproc.handle';

interface Marker {
  [MARK]: string;
  state: unknown;
}

function isPlainContainer(v: object): boolean {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null || Array.isArray(v);
}

/** Whether `root` holds a registered handle anywhere (what v8 would walk into). */
export function holdsHandles(root: unknown): boolean {
  if (byClass.size === 0) return false;
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (reducerOf(v)) return true;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    else if (!ArrayBuffer.isView(v) && !(v instanceof Date) && !(v instanceof RegExp) && !(v instanceof Error)) {
      for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

/** A copy of `root` in which every handle is a marker (containers copied, leaves shared). */
export function markHandles(root: unknown, ctx: ReduceContext): unknown {
  const memo = new Map<object, unknown>();
  const copy = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    const done = memo.get(v);
    if (done !== undefined) return done;
    const r = reducerOf(v);
    if (r) {
      const m: Marker = { [MARK]: r.type, state: undefined };
      memo.set(v, m);
      m.state = copy(r.reduce(v, ctx));
      return m;
    }
    if (v instanceof Map) {
      const out = new Map();
      memo.set(v, out);
      for (const [k, x] of v) out.set(copy(k), copy(x));
      return out;
    }
    if (v instanceof Set) {
      const out = new Set();
      memo.set(v, out);
      for (const x of v) out.add(copy(x));
      return out;
    }
    if (ArrayBuffer.isView(v) || v instanceof Date || v instanceof RegExp || v instanceof Error || !isObjectLike(v)) return v;
    // Arrays keep their length and holes; other objects become what v8 makes of them anyway:
    // their own enumerable properties.
    const out: Record<string, unknown> = Array.isArray(v) ? new Array(v.length) : isPlainContainer(v) ? Object.create(Object.getPrototypeOf(v)) : {};
    memo.set(v, out);
    for (const k of Object.keys(v)) out[k] = copy((v as Record<string, unknown>)[k]);
    return out;
  };
  return copy(root);
}

function isObjectLike(v: object): boolean {
  return !(v instanceof ArrayBuffer) && !(typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer) &&
    !(v instanceof Boolean) && !(v instanceof Number) && !(v instanceof String) && !(v instanceof BigInt);
}

/** Rebuilds the handles that markHandles() replaced, in place (the value is fresh from v8). */
export function rebuildHandles(root: unknown, ctx: RebuildContext): unknown {
  const memo = new Map<object, unknown>();
  const fix = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    const done = memo.get(v);
    if (done !== undefined) return done;
    if (Object.hasOwn(v, MARK)) {
      const m = v as Marker;
      const obj = reducerNamed(m[MARK]).rebuild(fix(m.state), ctx);
      memo.set(v, obj);
      return obj;
    }
    memo.set(v, v);
    if (v instanceof Map) {
      const entries = [...v].map(([k, x]) => [fix(k), fix(x)] as const);
      v.clear();
      for (const [k, x] of entries) v.set(k, x);
    } else if (v instanceof Set) {
      const items = [...v].map(fix);
      v.clear();
      for (const x of items) v.add(x);
    } else if (!ArrayBuffer.isView(v) && !(v instanceof Date) && !(v instanceof RegExp) && !(v instanceof Error)) {
      for (const k of Object.keys(v)) (v as Record<string, unknown>)[k] = fix((v as Record<string, unknown>)[k]);
    }
    return v;
  };
  return fix(root);
}
