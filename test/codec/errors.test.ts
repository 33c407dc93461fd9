import net from 'node:net';
import { types } from 'node:util';
import v8 from 'node:v8';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decode, encode, encodeScratch } from '../../lib/codec.js';

const TAIL = ': messages must be structured-clonable (see v8.serialize)';

/** The error encode throws for `value`, checked to be the documented TypeError with the v8 error as cause. */
function refusal(value: unknown, label?: string): TypeError {
  let caught: unknown;
  try {
    encode(value, label);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TypeError);
  const err = caught as TypeError;
  expect(err.cause).toBeInstanceOf(Error);
  expect(() => v8.serialize(value)).toThrow((err.cause as Error).message);
  // the scratch path reports the same, and both keep working afterwards
  expect(() => encodeScratch(value, label)).toThrow(err.message);
  expect(decode(encodeScratch({ ok: [1, 'two'] }))).toStrictEqual({ ok: [1, 'two'] });
  expect(decode(encode(new Map([[1, 2]])))).toStrictEqual(new Map([[1, 2]]));
  return err;
}

class Job {
  id = 7;
  hooks = { done: [1, () => {}] };
}

describe('uncloneable values are refused with their path', () => {
  it('names the example path from the docs, with the caller label', () => {
    const msg = { users: [{ name: 'a' }, { name: 'b' }, { name: 'c', callback() {} }] };
    expect(refusal(msg, 'Connection.send').message).toBe(
      `Connection.send: cannot send value at msg.users[2].callback (a function)${TAIL}`);
    expect(refusal(msg).message).toBe(`cannot send value at msg.users[2].callback (a function)${TAIL}`);
  });

  it.each([
    ['a function at the root', () => 1, 'msg (a function)'],
    ['a symbol at the root', Symbol('s'), 'msg (a symbol)'],
    ['a symbol in an array', [1, 2, Symbol('s')], 'msg[2] (a symbol)'],
    ['an odd key', { 'a b': { 'x-y': () => {} } }, 'msg["a b"]["x-y"] (a function)'],
    ['an index-like key of an object', { 0: { 12: Symbol() } }, 'msg[0][12] (a symbol)'],
    ['an extra array property', Object.assign([1, 2], { fn: () => {} }), 'msg.fn (a function)'],
    ['a hole-y array', [1, , () => {}], 'msg[2] (a function)'],
    ['a Map value', { m: new Map<unknown, unknown>([['k', 1], ['bad', { f() {} }]]) }, 'msg.m.get("bad").f (a function)'],
    ['a Map value under a number key', new Map([[3, Symbol()]]), 'msg.get(3) (a symbol)'],
    ['a Map value under an object key', new Map([[{}, Symbol()]]), 'msg.values()[0] (a symbol)'],
    ['a Map key', new Map<unknown, number>([[1, 1], [() => {}, 2]]), 'msg.keys()[1] (a function)'],
    ['a Set member', { s: new Set([1, Symbol()]) }, 'msg.s.values()[1] (a symbol)'],
    ['a class instance', { job: new Job() }, 'msg.job.hooks.done[1] (a function)'],
    ['a null-prototype object', { o: Object.assign(Object.create(null), { f() {} }) }, 'msg.o.f (a function)'],
    ['an Error cause', { e: new Error('x', { cause: () => {} }) }, 'msg.e.cause (a function)'],
    ['a WeakMap', { w: new WeakMap() }, 'msg.w (a WeakMap)'],
    ['a Promise', [Promise.resolve(1)], 'msg[0] (a Promise)'],
    ['a Proxy', { p: new Proxy({}, {}) }, 'msg.p (a Proxy)'],
    ['a generator', { g: (function* () {})() }, 'msg.g (a Generator)'],
    ['a SharedArrayBuffer', { sab: new SharedArrayBuffer(8) }, 'msg.sab (a SharedArrayBuffer)'],
  ])('finds %s', (_name, value, where) => {
    expect(refusal(value).message).toBe(`cannot send value at ${where}${TAIL}`);
  });

  it('reports the first offender in v8 order, through aliasing and cycles', () => {
    const shared = { ok: 1 };
    const root: Record<string, unknown> = { a: shared, b: { again: shared } };
    root.self = { back: root };
    root.bad = [0, () => {}];
    expect(refusal(root).message).toBe(`cannot send value at msg.bad[1] (a function)${TAIL}`);
  });

  it('finds a function inside a socket', () => {
    const err = refusal({ conn: new net.Socket() });
    expect(err.message).toMatch(/^cannot send value at msg\.conn\.\S+ \(a function\)/);
  });

  const server = net.createServer();
  afterAll(() => server.close());
  it('names a native handle', async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const handle = (server as unknown as { _handle: object })._handle;
    expect(refusal({ handle }).message).toBe(`cannot send value at msg.handle (a native TCP handle)${TAIL}`);
  });
});

/** Follows a path as printed in refusals (msg.a[1]["x y"].get("k").keys()[0]...) down from `root`. */
function follow(root: unknown, path: string): unknown {
  const step = /^(?:\.keys\(\)\[(\d+)\]|\.values\(\)\[(\d+)\]|\.get\(("(?:[^"\\]|\\.)*"|[^)]*)\)|\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;
  let v = root as any;
  let rest = path.replace(/^msg/, '');
  while (rest) {
    const m = step.exec(rest);
    if (!m) throw new Error(`cannot follow ${rest}`);
    rest = rest.slice(m[0].length);
    if (m[1] !== undefined) v = [...v.keys()][+m[1]];
    else if (m[2] !== undefined) v = [...v.values()][+m[2]];
    else if (m[3] !== undefined) v = v.get(mapKey(m[3]));
    else v = v[m[4] ?? m[5] ?? JSON.parse(m[6])];
  }
  return v;
}

function mapKey(text: string): unknown {
  if (text.startsWith('"')) return JSON.parse(text);
  if (/^-?\d+n$/.test(text)) return BigInt(text.slice(0, -1));
  const words: Record<string, unknown> = { true: true, false: false, null: null, undefined };
  return text in words ? words[text] : Number(text);
}

/** Objects whose contents v8 walks into (typed arrays, dates, boxed values... are leaves to it). */
function isContainer(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && !types.isAnyArrayBuffer(v) &&
    !types.isDate(v) && !types.isRegExp(v) && !types.isBoxedPrimitive(v) && !types.isNativeError(v);
}

function containers(root: unknown): object[] {
  const found: object[] = [];
  const visit = (v: unknown) => {
    if (!isContainer(v) || found.includes(v)) return;
    found.push(v);
    if (v instanceof Map) for (const [k, x] of v) { visit(k); visit(x); }
    else if (v instanceof Set) for (const x of v) visit(x);
    else for (const x of Object.values(v)) visit(x);
  };
  visit(root);
  return found;
}

describe('refusal paths lead to the offending value', () => {
  it('for a function planted anywhere in a random message', () => {
    const anyMessage = fc.anything({
      withMap: true, withSet: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true,
      withTypedArray: true, withDate: true, withBigInt: true, withObjectString: true, stringUnit: 'binary',
    });
    fc.assert(fc.property(anyMessage, fc.nat(), fc.nat(), fc.string(), (generated, where, slot, key) => {
      const x = structuredClone(generated); // planting must not mutate what fast-check may replay
      const planted = () => 'planted';
      const all = containers(x);
      let root: unknown = x;
      if (all.length === 0) root = planted;
      else {
        const target = all[where % all.length];
        if (target instanceof Map) target.set(target.size && slot % 2 ? [...target.keys()][slot % target.size] : key, planted);
        else if (target instanceof Set) target.add(planted);
        else if (Array.isArray(target)) target[slot % (target.length + 1)] = planted;
        else Object.defineProperty(target, key, { value: planted, enumerable: true, configurable: true, writable: true });
      }
      let err: unknown;
      try { encode(root); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(TypeError);
      const m = /^cannot send value at (.*) \(a function\): messages must/.exec((err as Error).message);
      expect(m).not.toBeNull();
      expect(follow(root, m![1])).toBe(planted);
    }), { numRuns: 300 });
  });
});

describe('other failures', () => {
  it('passes a throwing getter error through unchanged', () => {
    const boom = new RangeError('boom');
    const o = { a: 1, get b() { throw boom; } };
    expect(() => encode(o)).toThrow(boom);
    expect(() => encodeScratch(o)).toThrow(boom);
    const withMap = { m: new Map(), get b() { throw boom; } };
    expect(() => encode(withMap)).toThrow(boom);
    expect(decode(encodeScratch({ after: 'boom' }))).toStrictEqual({ after: 'boom' });
  });

  it('leaves no shared state behind when a refusal interrupts a large message', () => {
    const big = { text: 'é'.repeat(200_000), items: Array.from({ length: 50 }, (_, i) => ({ i })), f: () => {} };
    expect(() => encodeScratch(big)).toThrow(TypeError);
    const items = big.items; // objects the failed encode already visited must not count as seen now
    expect(decode(encodeScratch({ items }))).toStrictEqual({ items });
    expect(encodeScratch({ items })[0]).toBe(0x01);
  });

  it('refuses a detached typed array with v8\'s own error', () => {
    const u = new Uint8Array(4);
    structuredClone(u.buffer, { transfer: [u.buffer] });
    expect(refusal([u]).message).toBe(
      `cannot send value at msg[0] (a Uint8Array: Cannot perform Construct on a detached ArrayBuffer)${TAIL}`);
    expect(decode(encode([1]))).toStrictEqual([1]);
  });
});
