import v8 from 'node:v8';
import { types } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DenseNumbers, bufferMessageSize, decode, decodeRange, encode, encodeScratch, writeBufferMessage } from '../../lib/codec.js';

const v8RoundTrip = (x: unknown): unknown => v8.deserialize(v8.serialize(x));
const rt = (x: unknown): unknown => decode(encode(x));
const rtScratch = (x: unknown): unknown => decode(encodeScratch(x));

const COMPACT = 0x01;
const V8 = 0xff;

/**
 * First difference between two cloned values, or null. Stricter than toStrictEqual where that is blind:
 * -0, holes, prototypes (Buffer vs Uint8Array, null-prototype), key order, identity (aliasing and cycles).
 */
function difference(a: unknown, b: unknown, path = 'x', pairs = new Map<object, object>(), back = new Map<object, object>()): string | null {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (typeof a !== 'object' || a === null || b === null) {
    return Object.is(a, b) ? null : `${path}: ${String(a)} vs ${String(b)}`;
  }
  const o = b as object;
  if (pairs.has(a) || back.has(o)) {
    return pairs.get(a) === o && back.get(o) === a ? null : `${path}: identity differs (aliasing/cycle)`;
  }
  pairs.set(a, o);
  back.set(o, a);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(o)) return `${path}: prototypes differ`;
  const tag = Object.prototype.toString.call(a);
  if (tag !== Object.prototype.toString.call(o)) return `${path}: ${tag} vs ${Object.prototype.toString.call(o)}`;
  if (ArrayBuffer.isView(a) || types.isAnyArrayBuffer(a)) {
    const bytes = (v: object) =>
      ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(v as ArrayBuffer);
    return bytes(a).equals(bytes(o)) ? null : `${path}: bytes differ`;
  }
  if (types.isDate(a)) return Object.is(a.getTime(), (o as Date).getTime()) ? null : `${path}: dates differ`;
  if (types.isRegExp(a)) return String(a) === String(o) ? null : `${path}: regexps differ`;
  if (types.isBoxedPrimitive(a)) return Object.is(a.valueOf(), o.valueOf()) ? null : `${path}: boxed values differ`;
  if (types.isNativeError(a)) {
    const e = o as Error;
    if (a.name !== e.name || a.message !== e.message || a.stack !== e.stack) return `${path}: errors differ`;
    return difference(a.cause, e.cause, `${path}.cause`, pairs, back);
  }
  if (types.isMap(a) || types.isSet(a)) {
    const x = [...(a as Map<unknown, unknown>).entries()];
    const y = [...(o as Map<unknown, unknown>).entries()];
    if (x.length !== y.length) return `${path}: sizes differ`;
    for (let i = 0; i < x.length; i++) {
      const d = difference(x[i][0], y[i][0], `${path}.key${i}`, pairs, back) ??
        difference(x[i][1], y[i][1], `${path}.value${i}`, pairs, back);
      if (d) return d;
    }
    return null;
  }
  if (Array.isArray(a)) {
    const y = o as unknown[];
    if (a.length !== y.length) return `${path}: lengths ${a.length} vs ${y.length}`;
    for (let i = 0; i < a.length; i++) if (i in a !== i in y) return `${path}[${i}]: hole vs value`;
  }
  const ka = Object.keys(a), kb = Object.keys(o);
  if (JSON.stringify(ka) !== JSON.stringify(kb)) return `${path}: keys ${JSON.stringify(ka)} vs ${JSON.stringify(kb)}`;
  for (const k of ka) {
    const d = difference((a as Record<string, unknown>)[k], (o as Record<string, unknown>)[k], `${path}.${k}`, pairs, back);
    if (d) return d;
  }
  return null;
}

function expectSameClone(actual: unknown, expected: unknown): void {
  expect(difference(actual, expected)).toBeNull();
  expect(actual).toStrictEqual(expected);
}

function containsBuffer(x: unknown, seen = new Set<unknown>()): boolean {
  if (typeof x !== 'object' || x === null || seen.has(x)) return false;
  seen.add(x);
  if (Buffer.isBuffer(x)) return true;
  if (x instanceof Map) return [...x].some(([k, v]) => containsBuffer(k, seen) || containsBuffer(v, seen));
  if (x instanceof Set) return [...x].some((v) => containsBuffer(v, seen));
  return Object.values(x).some((v) => containsBuffer(v, seen));
}

// Strings of arbitrary UTF-16 code units: ASCII, Latin-1, BMP and (lone or paired) surrogates.
const utf16 = fc
  .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0, max: 0xff }),
    fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd800, max: 0xdfff })), { maxLength: 40 })
  .map((units) => String.fromCharCode(...units));
const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), utf16, fc.string({ minLength: 80, maxLength: 400 }));
const anyKey = fc.oneof(fc.string({ maxLength: 6 }), fc.nat({ max: 20 }).map(String), fc.constantFrom('__proto__', 'length', '-1', '4294967295'));
const anyNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-0, 0, NaN, Infinity, -Infinity, 127, 128, -1, 2 ** 31, -(2 ** 31)));

const TYPED = [Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const;

/** A typed array (or Buffer) sitting at a non-zero offset inside a bigger ArrayBuffer. */
const anyView = fc
  .tuple(fc.nat({ max: TYPED.length }), fc.uint8Array({ maxLength: 48 }), fc.nat({ max: 5 }))
  .map(([which, bytes, pad]) => {
    if (which === TYPED.length) return Buffer.from(bytes).subarray(Math.min(pad, bytes.length));
    const C = TYPED[which];
    const n = Math.floor(bytes.length / C.BYTES_PER_ELEMENT);
    const ab = new ArrayBuffer((n + pad + 1) * C.BYTES_PER_ELEMENT);
    new Uint8Array(ab, pad * C.BYTES_PER_ELEMENT).set(bytes.subarray(0, n * C.BYTES_PER_ELEMENT));
    return new C(ab, pad * C.BYTES_PER_ELEMENT, n);
  });

class Point {
  constructor(public x: unknown, public y: unknown) {}
}

/** Everything structured clone accepts, weighted towards what messages look like. */
const { value: anyValue } = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constantFrom(undefined, null, true, false),
    anyNumber, anyString, anyView, fc.bigInt(),
    fc.date({ noInvalidDate: false }),
    fc.constantFrom(/a+b/gi, /x/y).map((r) => new RegExp(r)),
    fc.oneof(anyString.map((s) => new String(s)), anyNumber.map((n) => new Number(n)), fc.boolean().map((b) => new Boolean(b))),
    fc.uint8Array({ maxLength: 8 }).map((u) => u.buffer),
    fc.string().map((m) => new RangeError(m)),
  ),
  value: fc.oneof({ maxDepth: 4, depthSize: 'small' },
    { arbitrary: tie('leaf'), weight: 6 },
    { arbitrary: fc.array(tie('value'), { maxLength: 6 }), weight: 2 },
    { arbitrary: fc.dictionary(anyKey, tie('value'), { maxKeys: 6, noNullPrototype: true }), weight: 2 },
    fc.dictionary(anyKey, tie('value'), { maxKeys: 3 }), // sometimes null-prototype
    fc.sparseArray(tie('value'), { maxLength: 6 }),
    fc.tuple(fc.array(tie('value'), { maxLength: 3 }), tie('value')).map(([a, extra]) => Object.assign(a, { extra })),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((e) => new Map(e)),
    fc.array(tie('value'), { maxLength: 3 }).map((e) => new Set(e)),
    fc.tuple(tie('value'), tie('value')).map(([x, y]) => new Point(x, y)),
    tie('value').map((v) => [v, v]), // aliasing when v is an object
  ),
}));

/** Values the compact format covers; fast-check builds fresh objects, so no aliasing. */
const { plain: compactValue } = fc.letrec((tie) => ({
  plain: fc.oneof({ maxDepth: 4, depthSize: 'small' },
    { arbitrary: fc.oneof(fc.constantFrom(undefined, null, true, false), anyNumber, anyString, anyView), weight: 5 },
    fc.array(tie('plain'), { maxLength: 6 }),
    fc.dictionary(anyKey, tie('plain'), { maxKeys: 6, noNullPrototype: true }),
    // long arrays starting with numbers take the packed path, and must leave it cleanly
    fc.tuple(fc.array(anyNumber, { minLength: 16, maxLength: 40 }), fc.array(tie('plain'), { maxLength: 3 }))
      .map(([nums, rest]) => [...nums, ...rest])),
}));

describe('round trip equals v8.deserialize(v8.serialize(x))', () => {
  it('for fc.anything with every option', () => {
    fc.assert(fc.property(fc.anything({
      withBoxedValues: true, withMap: true, withSet: true, withObjectString: true, withNullPrototype: true,
      withBigInt: true, withDate: true, withTypedArray: true, withSparseArray: true, stringUnit: 'binary',
    }), (x) => {
      expectSameClone(rt(x), v8RoundTrip(x));
      expectSameClone(rtScratch(x), v8RoundTrip(x));
    }), { numRuns: 400 });
  });

  it('for messages mixing every clonable kind, aliasing and odd typed-array offsets', () => {
    fc.assert(fc.property(anyValue, (x) => {
      const expected = v8RoundTrip(x);
      expectSameClone(rt(x), expected);
      expectSameClone(rtScratch(x), expected);
      if (!containsBuffer(x)) expectSameClone(rt(x), structuredClone(x));
    }), { numRuns: 600 });
  });

  it('uses the compact format for everything it covers', () => {
    fc.assert(fc.property(compactValue, (x) => {
      expect(encode(x)[0]).toBe(COMPACT);
      expectSameClone(rt(x), v8RoundTrip(x));
    }), { numRuns: 400 });
  });
});

describe('compact and fallback formats', () => {
  it('tags compact messages differently from the v8 fallback, which is v8.serialize verbatim', () => {
    expect(encode(1)[0]).toBe(COMPACT);
    expect(encode({ id: 1, op: 'get', args: [1, 2, 3] })[0]).toBe(COMPACT);
    const map = new Map([[1, 'a']]);
    expect(encode(map)[0]).toBe(V8);
    expect(encode(map)).toEqual(v8.serialize(map));
    expect(encode(1)[0]).not.toBe(encode(new Map())[0]);
  });

  it.each([
    ['Map', new Map()], ['Set', new Set([1])], ['Date', new Date(0)], ['RegExp', /x/], ['BigInt', 1n],
    ['Error', new Error('e')], ['boxed', new Number(1)], ['ArrayBuffer', new ArrayBuffer(2)],
    ['DataView', new DataView(new ArrayBuffer(2))], ['class instance', new Point(1, 2)],
    ['null prototype', Object.assign(Object.create(null), { a: 1 })], ['sparse array', [1, , 3]],
    ['trailing hole', Object.assign([1], { length: 2 })], ['array extra prop', Object.assign([1], { p: 2 })], ['empty array extra prop', Object.assign([], { p: 2 })],
    ['Array subclass', new (class extends Array {})()], ['Uint8Array subclass', new (class extends Uint8Array {})(2)],
    ['non-enumerable index', Object.defineProperty([1, 2], 0, { value: 7, enumerable: false })],
  ])('falls back to v8 for %s, with v8 semantics', (_name, x) => {
    const bytes = encode(x);
    expect(bytes[0]).toBe(V8);
    expectSameClone(decode(bytes), v8RoundTrip(x));
  });

  it('encodes empty views compactly but leaves detached ones to v8, which refuses them', () => {
    for (const x of [new Uint8Array(0), Buffer.alloc(0), new Float64Array(new ArrayBuffer(16), 16), Buffer.from('abc').subarray(3)]) {
      expect(encode(x)[0]).toBe(COMPACT);
      expectSameClone(rt(x), v8RoundTrip(x));
    }
    const detached = new Uint8Array(8);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(() => v8.serialize(detached)).toThrow(TypeError);
    expect(() => encode({ detached })).toThrow(TypeError);
    expect(encode(1)[0]).toBe(COMPACT);
  });

  it('keeps an own "constructor" key', () => {
    const o = { constructor: 'not a function', inner: { constructor: [1] } };
    const r = rt(o);
    expect(encode(o)[0]).toBe(COMPACT);
    expect(difference(r, v8RoundTrip(o))).toBeNull();
  });

  it('keeps identity: an object reached twice decodes to one object', () => {
    const shared = { a: 1 };
    const u8 = new Uint8Array([1, 2]);
    const r = rt({ x: shared, y: [shared], u: [u8, u8] }) as { x: object; y: object[]; u: Uint8Array[] };
    expect(r.x).toBe(r.y[0]);
    expect(r.u[0]).toBe(r.u[1]);
    expectSameClone(r, v8RoundTrip({ x: shared, y: [shared], u: [u8, u8] }));
  });

  it('keeps cycles', () => {
    const o: Record<string, unknown> = { name: 'root' };
    o.self = o;
    o.list = [o, { back: o }];
    const r = rt(o) as Record<string, unknown>;
    expect(r.self).toBe(r);
    expect((r.list as unknown[])[0]).toBe(r);
    expect(((r.list as unknown[])[1] as { back: unknown }).back).toBe(r);
  });

  it('detects aliasing beyond the linear-scan window', () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ i }));
    const msg = [...items, items[3]];
    expect(encode(msg)[0]).toBe(V8);
    const r = rt(msg) as object[];
    expect(r[100]).toBe(r[3]);
    expect(encode(items)[0]).toBe(COMPACT);
  });

  it('packs long number arrays and leaves the packing at the first non-number', () => {
    const nums = Array.from({ length: 40 }, (_, i) => (i % 3 ? i * 1.5 : -i));
    nums[5] = -0;
    nums[6] = NaN;
    expect(encode(nums).length).toBe(1 + 5 + 8 * 40);
    expectSameClone(rt(nums), v8RoundTrip(nums));
    for (const at of [1, 16, 39]) {
      const mixed: unknown[] = [...nums];
      mixed[at] = at === 16 ? { o: [1, 'x'] } : 'str';
      expect(encode(mixed)[0]).toBe(COMPACT);
      expectSameClone(rt(mixed), v8RoundTrip(mixed));
    }
    const withHole = [...nums];
    delete withHole[20];
    expect(encode(withHole)[0]).toBe(V8);
    expectSameClone(rt(withHole), v8RoundTrip(withHole));
  });

  it('reads each element once, even when leaving the packed form', () => {
    let calls = 0;
    const a: unknown[] = Array.from({ length: 20 }, (_, i) => i + 0.5);
    Object.defineProperty(a, 17, { enumerable: true, get: () => (calls++, 'late') });
    expectSameClone(rt(a), [...a.slice(0, 17), 'late', 18.5, 19.5]);
    expect(calls).toBe(1);
    const first: unknown[] = Array.from({ length: 20 }, (_, i) => i);
    Object.defineProperty(first, 0, { enumerable: true, get: () => (calls++, 0.5) });
    expectSameClone(rt(first), [0.5, ...first.slice(1)]);
    expect(calls).toBe(2);
  });

  it('packs long int32 arrays in four bytes a number; -0, NaN and 2^31 keep eight', () => {
    const ints = Array.from({ length: 40 }, (_, i) => (i % 2 ? i * 1000 : -i - 1));
    ints[3] = 2 ** 31 - 1;
    ints[4] = -(2 ** 31);
    expect(encode(ints).length).toBe(1 + 5 + 4 * 40);
    expectSameClone(rt(ints), v8RoundTrip(ints));
    for (const odd of [-0, NaN, 2 ** 31, -(2 ** 31) - 1, 0.5, Infinity]) {
      for (const at of [0, 20, 39]) {
        const xs = [...ints];
        xs[at] = odd;
        expect(encode(xs).length).toBe(1 + 5 + 8 * 40);
        const r = rt(xs) as number[];
        expect(Object.is(r[at], odd)).toBe(true);
        expectSameClone(r, v8RoundTrip(xs));
      }
    }
    // Holes and extra properties are v8's, whatever the elements.
    const sparse = [...ints];
    delete sparse[7];
    expect(encode(sparse)[0]).toBe(V8);
    expectSameClone(rt(sparse), v8RoundTrip(sparse));
    const extra = Object.assign([...ints], { tag: 'x' });
    expect(encode(extra)[0]).toBe(V8);
    expectSameClone(rt(extra), v8RoundTrip(extra));
  });

  it('encodes DenseNumbers as its Array, packed, also inside a message that goes to v8', () => {
    const ints = Array.from({ length: 30 }, (_, i) => i - 15);
    const doubles = Array.from({ length: 30 }, (_, i) => i / 3);
    doubles[1] = -0;
    doubles[2] = NaN;
    expect(encode(new DenseNumbers(ints)).length).toBe(1 + 5 + 4 * 30);
    expect(encode(new DenseNumbers(doubles)).length).toBe(1 + 5 + 8 * 30);
    for (const a of [ints, doubles, [], [0.5]]) {
      const r = rt(new DenseNumbers(a));
      expect(Object.getPrototypeOf(r)).toBe(Array.prototype);
      expectSameClone(r, v8RoundTrip(a));
      const viaV8 = rt([new DenseNumbers(a), new Map([[1, 2]])]) as unknown[];
      expectSameClone(viaV8, v8RoundTrip([a, new Map([[1, 2]])]));
    }
    expect(() => encode(new DenseNumbers(['x' as unknown as number]))).toThrow(/DenseNumbers holds a non-number/);
  });

  it('preserves -0, NaN, infinities and int32 edges', () => {
    const xs = [-0, 0, NaN, Infinity, -Infinity, 127, 128, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 0.1, Number.MIN_VALUE, Number.MAX_VALUE];
    const r = rt(xs) as number[];
    xs.forEach((x, i) => expect(Object.is(r[i], x)).toBe(true));
    expect(Object.is(rt(-0), -0)).toBe(true);
  });

  it('keeps lone surrogates and non-ASCII text exactly', () => {
    for (const s of ['', 'a', '\ud800', 'x\udc00y', '\udc00\ud800', 'é', '😀', 'naïve ' + '\ud83d', 'k'.repeat(85) + 'é', 'é'.repeat(86)]) {
      expect(rt(s)).toBe(s);
      expect(rt({ [s]: s })).toStrictEqual({ [s]: s });
    }
  });

  it('creates own __proto__ keys instead of setting the prototype', () => {
    const o = JSON.parse('{"__proto__": {"polluted": true}, "b": 1}');
    const r = rt(o) as Record<string, unknown>;
    expect(encode(o)[0]).toBe(COMPACT);
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(Object.keys(r)).toEqual(['__proto__', 'b']);
    expectSameClone(r, v8RoundTrip(o));
  });

  it('orders keys like structured clone: integer keys first', () => {
    const o = { b: 1, a: 2, 10: 3, 2: 4, '-1': 5, 4294967294: 6, 4294967295: 7 };
    expect(Object.keys(rt(o) as object)).toEqual(Object.keys(v8RoundTrip(o) as object));
  });
});

describe('getters', () => {
  it('runs getters once on the compact path, like v8', () => {
    let calls = 0;
    const o = { get x() { calls++; return { y: calls }; }, z: 1 };
    expectSameClone(rt(o), { x: { y: 1 }, z: 1 });
    expect(calls).toBe(1);
  });

  it('skips a key deleted by an earlier getter, like v8', () => {
    const make = () => ({ get a() { delete (this as Record<string, unknown>).b; return 1; }, b: 2, c: 3 });
    expectSameClone(rt(make()), v8RoundTrip(make()));
  });

  it('survives a getter that encodes and decodes (re-entrancy)', () => {
    const inner = { deep: ['inner', 1.5] };
    const o = {
      before: 'x'.repeat(100),
      get x() { return decode(encodeScratch(inner)); },
      get y() { return decode(encode(inner)); },
      after: [1, 2, 3],
    };
    const expected = { before: 'x'.repeat(100), x: structuredClone(inner), y: structuredClone(inner), after: [1, 2, 3] };
    const scratch = encodeScratch(o);
    expect(scratch[0]).toBe(COMPACT);
    expectSameClone(decode(scratch), expected);
    const owned = encode(o);
    expect(owned[0]).toBe(COMPACT);
    expectSameClone(decode(owned), expected);
    // and when the outer message ends up in v8, whose serializer runs the getters again
    const withMap = { ...expected, m: new Map([[1, 2]]), get z() { return decode(encodeScratch(inner)); } };
    expectSameClone(decode(encodeScratch(withMap)), v8RoundTrip(withMap));
  });
});

describe('big values', () => {
  it('round-trips big strings, ASCII and not', () => {
    const ascii = 'abcdefgh'.repeat(128 * 1024);
    const mixed = 'añ€😀'.repeat(50_000);
    const lone = mixed + '\ud800';
    for (const s of [ascii, mixed, lone]) expect(rt(s)).toBe(s);
    expect(encode(ascii).length).toBe(1 + 5 + ascii.length);
  });

  it('round-trips a 64 MiB Buffer and does not keep a huge scratch afterwards', () => {
    const big = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4093) big[i] = i & 0xff;
    const scratch = encodeScratch(big);
    const r = decode(scratch) as Buffer;
    expect(Buffer.isBuffer(r)).toBe(true);
    expect(r.equals(big)).toBe(true);
    expect((decode(encode(big)) as Buffer).equals(big)).toBe(true);
    expect(encodeScratch(1).buffer.byteLength).toBeLessThanOrEqual(1024 * 1024);
  });

  it('round-trips long arrays and many-keyed objects', () => {
    const arr = Array.from({ length: 10_000 }, (_, i) => (i % 3 ? i * 0.5 : { i, s: `s${i}` }));
    const obj = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]));
    expectSameClone(rt(arr), v8RoundTrip(arr));
    expectSameClone(rt(obj), v8RoundTrip(obj));
  });

  it('hands very deep nesting to v8', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 1200; i++) deep = { d: deep };
    expect(encode(deep)[0]).toBe(V8);
    expectSameClone(rt(deep), v8RoundTrip(deep));
  });
});

describe('typed arrays', () => {
  it.each(TYPED.map((C) => [C.name, C] as const))('%s at an odd offset decodes to its own exact, aligned buffer', (_n, C) => {
    const bpe = C.BYTES_PER_ELEMENT;
    const ab = new ArrayBuffer(bpe * 12);
    new Uint8Array(ab).forEach((_, i, u) => { u[i] = (i * 37 + 11) & 0xff; });
    const view = new C(ab, bpe * 3, 5);
    const bytes = encode(view);
    expect(bytes[0]).toBe(COMPACT);
    const r = decode(bytes) as typeof view;
    expect(Object.getPrototypeOf(r)).toBe(C.prototype);
    expect(r.byteOffset).toBe(0);
    expect(r.buffer.byteLength).toBe(5 * bpe);
    expectSameClone(r, v8RoundTrip(view));
  });

  it('decodes a Buffer subarray at an odd offset to a Buffer holding just its bytes', () => {
    const b = Buffer.from('0123456789abcdef').subarray(3, 10);
    const r = decode(encode(b)) as Buffer;
    expect(Buffer.isBuffer(r)).toBe(true);
    expect(r.toString()).toBe('3456789');
    expect(r.buffer.byteLength).toBe(7);
    expectSameClone(r, v8RoundTrip(b));
  });

  it('decodeRange decodes a message in the middle of a larger buffer, checking its end', () => {
    const msg = encode({ a: [1, 'x'], b: Buffer.from('zz') });
    const host = Buffer.alloc(msg.length + 20, 0xee);
    msg.copy(host, 7);
    expect(decodeRange(host, 7, 7 + msg.length)).toEqual({ a: [1, 'x'], b: Buffer.from('zz') });
    expect(() => decodeRange(host, 7, 7 + msg.length - 1)).toThrow(/corrupt/);
    expect(() => decodeRange(host, 7, 7 + msg.length + 1)).toThrow(/corrupt/);
  });

  it('writeBufferMessage writes exactly what encode makes of a plain Buffer; other views are refused', () => {
    const b = Buffer.from('0123456789').subarray(2, 9);
    const n = bufferMessageSize(b);
    expect(n).toBe(encode(b).length);
    const out = Buffer.alloc(n + 3);
    writeBufferMessage(b, out, 3);
    expect(out.subarray(3).equals(encode(b))).toBe(true);
    class Sub extends Buffer {}
    for (const v of [new Uint8Array(4), Buffer.alloc(0), Object.setPrototypeOf(Buffer.alloc(2), Sub.prototype), 'str', null, { length: 3 }]) {
      expect(bufferMessageSize(v)).toBe(-1);
    }
  });

  it('decodes a Uint8Array as a Uint8Array, not a Buffer (as v8 does)', () => {
    const r = rt(new Uint8Array([1, 2, 3]));
    expect(Buffer.isBuffer(r)).toBe(false);
    expect(Object.getPrototypeOf(r)).toBe(Uint8Array.prototype);
  });

  it('decodes from an unaligned, non-Buffer input without sharing its memory', () => {
    const msg = encode({ f: new Float64Array([1.5, -0]), b: Buffer.from('hi') });
    const ab = new ArrayBuffer(msg.length + 3);
    const view = new Uint8Array(ab, 3, msg.length);
    view.set(msg);
    const r = decode(view) as { f: Float64Array; b: Buffer };
    view.fill(0);
    expect([...r.f]).toEqual([1.5, -0]);
    expect(Object.is(r.f[1], -0)).toBe(true);
    expect(r.b.toString()).toBe('hi');
  });

  it('decodes from shared memory (a SharedArrayBuffer-backed view), compact and v8 formats', () => {
    for (const x of [{ s: 'héllo', n: [1, 2.5], b: Buffer.from('ab'), f: new Float32Array([0.5]) }, new Map([[1, new Uint16Array([7])]])]) {
      const msg = encode(x);
      const shared = new Uint8Array(new SharedArrayBuffer(msg.length + 5), 5, msg.length);
      shared.set(msg);
      const r = decode(shared);
      shared.fill(0);
      expectSameClone(r, v8RoundTrip(x));
    }
  });

  it('drops own properties of typed arrays and Buffers, as v8 does', () => {
    const u = Object.assign(new Uint16Array([1, 2]), { extra: 1 });
    const b = Object.assign(Buffer.from('x'), { extra: 2 });
    expect(encode([u, b])[0]).toBe(COMPACT);
    expectSameClone(rt([u, b]), v8RoundTrip([u, b]));
  });

  it('ignores symbol keys and non-enumerable properties, as v8 does', () => {
    const o = Object.defineProperty({ [Symbol('s')]: 1, a: 1 }, 'hidden', { value: 2, enumerable: false });
    expect(encode(o)[0]).toBe(COMPACT);
    expectSameClone(rt(o), v8RoundTrip(o));
    expect(rt(o)).toStrictEqual({ a: 1 });
  });

  it('does not alias the input for v8-format messages either', () => {
    const msg = encode(new Map([['b', Buffer.from('xyz')]]));
    const r = decode(msg) as Map<string, Buffer>;
    msg.fill(0);
    expect(r.get('b')!.toString()).toBe('xyz');
  });
});

describe('scratch buffer', () => {
  it('reuses the scratch: the first view is invalidated but a copy still decodes', () => {
    const first = encodeScratch({ x: 1, s: 'first' });
    const copy = Buffer.from(first);
    const second = encodeScratch({ y: 'second!!', z: [1, 2] });
    expect(first.buffer).toBe(second.buffer);
    expect(first.equals(copy)).toBe(false);
    expect(decode(copy)).toStrictEqual({ x: 1, s: 'first' });
    expect(decode(second)).toStrictEqual({ y: 'second!!', z: [1, 2] });
  });

  it('encode returns memory the caller owns', () => {
    const a = encode({ a: 'aaaa' });
    encodeScratch({ b: 'bbbb' });
    const b = encode({ c: 'cccc' });
    expect(decode(a)).toStrictEqual({ a: 'aaaa' });
    expect(decode(b)).toStrictEqual({ c: 'cccc' });
  });

  it('rejects bytes that are not a message', () => {
    expect(() => decode(new Uint8Array(0))).toThrow(/not a message/);
    expect(() => decode(new Uint8Array([0x42, 1]))).toThrow(/not a message/);
    const good = encode({ a: [1, 'two', 3.5] });
    for (let n = 1; n < good.length; n++) expect(() => decode(good.subarray(0, n))).toThrow();
    expect(() => decode(Buffer.concat([good, Buffer.from([0])]))).toThrow(/corrupt/);
  });
});
