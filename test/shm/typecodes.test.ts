// Value, RawValue, SharedArray, RawArray in one process: every typecode round trips, ranges and
// types are checked with clear errors, indices as in Python, views share the bytes.
import { describe, expect, it } from 'vitest';
import {
  Value, RawValue, SharedArray, RawArray, Lock, RLock,
  SynchronizedValue, RawSharedValue, SynchronizedArray, RawSharedArray,
  type Typecode,
} from '../../lib/index.js';

const INTS: [Typecode, number, number, new (n: number) => ArrayLike<number>][] = [
  ['b', -128, 127, Int8Array],
  ['B', 0, 255, Uint8Array],
  ['h', -32768, 32767, Int16Array],
  ['H', 0, 65535, Uint16Array],
  ['i', -(2 ** 31), 2 ** 31 - 1, Int32Array],
  ['I', 0, 2 ** 32 - 1, Uint32Array],
];
const BIGS: [Typecode, bigint, bigint, Function][] = [
  ['l', -(2n ** 63n), 2n ** 63n - 1n, BigInt64Array],
  ['q', -(2n ** 63n), 2n ** 63n - 1n, BigInt64Array],
  ['L', 0n, 2n ** 64n - 1n, BigUint64Array],
  ['Q', 0n, 2n ** 64n - 1n, BigUint64Array],
];

describe('Value and RawValue', () => {
  it.each(INTS)("'%s' holds its whole range and refuses one past either end", (code, min, max) => {
    for (const make of [(x?: number) => Value(code, x), (x?: number) => RawValue(code, x)]) {
      const v = make();
      expect(v.value).toBe(0);
      for (const x of [min, max, 0, 1, -1 >= min ? -1 : 2]) {
        v.value = x;
        expect(v.value).toBe(x);
      }
      expect(() => (v.value = max + 1)).toThrow(RangeError);
      expect(() => (v.value = min - 1)).toThrow(RangeError);
      expect(() => (v.value = max + 1)).toThrow(new RegExp(`Value\\('${code}'\\)\\.value: ${max + 1} is out of range \\(${min} to ${max}\\)`));
      expect(() => make(max + 1)).toThrow(RangeError);
      expect(v.value).toBe(0 >= min ? (-1 >= min ? -1 : 2) : 2);
    }
  });

  it.each(INTS)("'%s' wants an integer: floats and strings are TypeErrors; BigInts and booleans convert", (code) => {
    const v = Value(code, 7);
    expect(() => (v.value = 1.5)).toThrow(TypeError);
    expect(() => (v.value = 1.5)).toThrow(/expected an integer, got 1\.5/);
    expect(() => (v.value = '3' as never)).toThrow(/expected an integer, got "3"/);
    expect(() => (v.value = NaN)).toThrow(TypeError);
    expect(v.value).toBe(7);
    v.value = 5n;
    expect(v.value).toBe(5);
    v.value = true;
    expect(v.value).toBe(1);
  });

  it.each(BIGS)("'%s' is a BigInt over its whole range (numbers that are integers convert)", (code, min, max) => {
    const v = Value(code, 0n);
    expect(v.value).toBe(0n);
    for (const x of [min, max, 1n]) {
      v.value = x;
      expect(v.value).toBe(x);
    }
    v.value = 42;
    expect(v.value).toBe(42n);
    expect(() => (v.value = max + 1n)).toThrow(RangeError);
    expect(() => (v.value = min - 1n)).toThrow(RangeError);
    expect(() => (v.value = 0.5)).toThrow(/expected an integer \(a BigInt or an integral number\), got 0\.5/);
    expect(RawValue(code, 9n).value).toBe(9n);
  });

  it("'f' and 'd' hold numbers; a finite value a float cannot hold is refused", () => {
    const d = Value('d', 1.5);
    expect(d.value).toBe(1.5);
    for (const x of [Math.PI, -0, Infinity, -Infinity, Number.MAX_VALUE, 5e-324]) {
      d.value = x;
      expect(Object.is(d.value, x)).toBe(true);
    }
    d.value = NaN;
    expect(d.value).toBeNaN();
    const f = RawValue('f', 0.1);
    expect(f.value).toBe(Math.fround(0.1));
    f.value = 3.4e38;
    expect(f.value).toBe(Math.fround(3.4e38));
    f.value = Infinity;
    expect(f.value).toBe(Infinity);
    expect(() => (f.value = 1e39)).toThrow(/RawValue\('f'\)\.value: 1e\+39 is out of range for a float/);
    expect(() => (d.value = 'x' as never)).toThrow(/expected a number, got "x"/);
    d.value = 3n;
    expect(d.value).toBe(3);
  });

  it("'c' is one byte: a 1-byte Buffer out (Python's bytes), a byte, 1-char string or 0..255 in", () => {
    const c = Value('c');
    expect(c.value).toEqual(Buffer.of(0));
    c.value = 'a';
    expect(c.value).toEqual(Buffer.from('a'));
    c.value = Buffer.from('z');
    expect(c.value).toEqual(Buffer.from('z'));
    c.value = 0xff;
    expect(c.value).toEqual(Buffer.of(0xff));
    c.value = '\xe9';
    expect(c.value).toEqual(Buffer.of(0xe9));
    expect(() => (c.value = 'ab')).toThrow(/Value\('c'\)\.value: expected one byte/);
    expect(() => (c.value = '\u0100')).toThrow(TypeError);
    expect(() => (c.value = Buffer.from('ab'))).toThrow(/a 2-byte Buffer/);
    expect(() => (c.value = 256)).toThrow(TypeError);
    expect(String(Value('c', 'q'))).toBe("<Synchronized wrapper for c_char(b'q')>");
  });

  it("'u' is one character (a code point, also outside the BMP)", () => {
    const u = Value('u', 'é');
    expect(u.value).toBe('é');
    u.value = '😀';
    expect(u.value).toBe('😀');
    expect(() => (u.value = 'ab')).toThrow(/expected a 1-character string, got "ab"/);
    expect(() => (u.value = '')).toThrow(TypeError);
  });

  it('a bad typecode is a TypeError listing the valid ones', () => {
    for (const make of [() => Value('x' as never), () => RawValue('int' as never), () => SharedArray('z' as never, 3), () => RawArray(undefined as never, 3)]) {
      expect(make).toThrow(TypeError);
      expect(make).toThrow(/unknown typecode .*; use one of b B h H i I l L q Q f d c u/);
    }
  });

  it('Value has a lock (an RLock of its own by default), acquire/release shortcuts and getObj()', async () => {
    const v = Value('i', 1);
    expect(v).toBeInstanceOf(SynchronizedValue);
    expect(v).toBeInstanceOf(Value);
    expect(v.getLock()).toBeInstanceOf(RLock);
    expect(v.acquireSync()).toBe(true);
    expect(v.acquireSync()).toBe(true); // reentrant
    v.release();
    v.release();
    expect(await v.acquire({ timeout: 100 })).toBe(true);
    v.value += 1;
    v.release();
    expect(() => v.release()).toThrow(/not acquired/);
    const raw = v.getObj();
    expect(raw).toBeInstanceOf(RawSharedValue);
    raw.value = 40;
    expect(v.value).toBe(40);
    expect(String(v)).toBe('<Synchronized wrapper for c_int(40)>');
  });

  it('lock: false gives a raw value; a Lock or RLock of ours guards it; anything else is refused', () => {
    const raw = Value('i', 3, { lock: false });
    expect(raw).toBeInstanceOf(RawSharedValue);
    expect(raw).not.toBeInstanceOf(SynchronizedValue);
    expect(() => (raw as unknown as SynchronizedValue).getLock()).toThrow(/Value\('i'\) has no lock: it is raw/);
    expect(() => (RawValue('d') as unknown as SynchronizedValue).getLock()).toThrow(/RawValue\('d'\) has no lock: it is raw/);
    const lock = new Lock();
    const v = Value('i', 3, { lock });
    expect(v.getLock()).toBe(lock);
    expect(v.acquireSync({ block: false })).toBe(true);
    expect(lock.acquireSync({ block: false })).toBe(false);
    v.release();
    expect(Value('i', 0, { lock: null }).getLock()).toBeInstanceOf(RLock);
    expect(() => Value('i', 0, { lock: 'yes' as never })).toThrow(/lock must be true, false, or a Lock\/RLock/);
    expect(() => Value('i', 0, { lock: {} as never })).toThrow(TypeError);
  });

  it('new works as well as a call', () => {
    expect(new Value('h', 2).value).toBe(2);
    expect(new RawValue('h', 2)).toBeInstanceOf(RawValue);
    expect(new SharedArray('h', 2).length).toBe(2);
    expect(new RawArray('h', [1]).get(0)).toBe(1);
  });
});

describe('SharedArray and RawArray', () => {
  const cases: [Typecode, unknown[], Function][] = [
    ...INTS.map(([c, min, max, T]) => [c, [min, max, 0], T] as [Typecode, unknown[], Function]),
    ...BIGS.map(([c, min, max, T]) => [c, [min, max, 0n], T] as [Typecode, unknown[], Function]),
    ['f', [1.5, -2, Infinity], Float32Array],
    ['d', [Math.E, -0, 1e300], Float64Array],
  ];

  it.each(cases)("'%s' arrays round trip and their view is the matching TypedArray over the same bytes", (code, values, T) => {
    for (const a of [SharedArray(code, values as never), RawArray(code, values as never)]) {
      expect(a.length).toBe(3);
      expect(a.typecode).toBe(code);
      expect(a.toArray()).toEqual(values);
      expect([...a]).toEqual(values);
      expect(a.view).toBeInstanceOf(T);
      expect(a.view.length).toBe(3);
      a.set(1, values[0] as never);
      expect(a.view[1]).toEqual(values[0]);
      (a.view as unknown as unknown[])[2] = values[1];
      expect(a.get(2)).toEqual(values[1]);
    }
    const zeros = SharedArray(code, 4);
    expect(zeros.toArray()).toEqual(Array(4).fill(typeof values[2] === 'bigint' ? 0n : 0));
  });

  it('indices: negative ones count from the end (as in Python); out of range is a RangeError naming the index and length', () => {
    const a = SharedArray('i', [10, 20, 30]);
    expect(a.get(-1)).toBe(30);
    expect(a.get(-3)).toBe(10);
    a.set(-2, 21);
    expect(a.get(1)).toBe(21);
    expect(() => a.get(3)).toThrow(RangeError);
    expect(() => a.get(3)).toThrow("SharedArray('i', 3).get(3): index out of range for length 3");
    expect(() => a.get(-4)).toThrow("SharedArray('i', 3).get(-4): index out of range for length 3");
    expect(() => RawArray('d', 2).set(2, 1)).toThrow("RawArray('d', 2).set(2): index out of range for length 2");
    expect(() => a.get(1.5)).toThrow(/the index must be an integer, got 1\.5/);
    expect(() => a.get('1' as never)).toThrow(TypeError);
    expect(() => a.set(0, 2 ** 40)).toThrow(/SharedArray\('i', 3\)\.set\(0, …\): 1099511627776 is out of range/);
  });

  it('initial values are all checked before anything is made', () => {
    expect(() => SharedArray('B', [1, 2, 256])).toThrow(/SharedArray\('B', …\) at index 2: 256 is out of range \(0 to 255\)/);
    expect(() => RawArray('i', [1, 'x'] as never)).toThrow(/at index 1: expected an integer, got "x"/);
    expect(() => SharedArray('i', -1)).toThrow(/the size must be an integer >= 0, got -1/);
    expect(() => SharedArray('i', 1.5)).toThrow(RangeError);
    expect(() => SharedArray('i', {} as never)).toThrow(/expected a size or an iterable of initial values/);
    expect(SharedArray('i', new Set([4, 5])).toArray()).toEqual([4, 5]);
    expect(SharedArray('d', new Float64Array([0.5])).toArray()).toEqual([0.5]);
    expect(SharedArray('i', 0).length).toBe(0);
    expect(SharedArray('i', 0).toArray()).toEqual([]);
  });

  it("'c' arrays: a Buffer view, value (up to the first NUL) and raw, as in Python", () => {
    const s = SharedArray('c', Buffer.from('hello'));
    expect(s.view).toBeInstanceOf(Buffer);
    expect(s.get(0)).toEqual(Buffer.from('h'));
    expect(s.toArray()).toEqual(Buffer.from('hello'));
    expect(s.value).toEqual(Buffer.from('hello'));
    s.value = 'hi';
    expect(s.raw).toEqual(Buffer.from('hi\0lo'));
    expect(s.value).toEqual(Buffer.from('hi'));
    s.raw = Buffer.from('abc');
    expect(s.raw).toEqual(Buffer.from('abclo'));
    expect(() => (s.value = 'too long')).toThrow(/SharedArray\('c', 5\)\.value: 8 bytes do not fit in 5/);
    expect(() => (s.value = '\u20ac')).toThrow(/character above '\\xff'.*Buffer\.from\(s, 'utf8'\)/);
    s.set(4, 'z');
    expect(s.get(-1)).toEqual(Buffer.from('z'));
    expect(SharedArray('c', 'abc').toArray()).toEqual(Buffer.from('abc'));
    expect(String(RawArray('c', 'a\n'))).toBe("c_char_Array_2(b'a\\x0a')");
    expect(() => SharedArray('i', 2).value).toThrow(/only 'c' \(char\) arrays have \.value/);
  });

  it("'u' arrays take and give strings", () => {
    const u = RawArray('u', 'héy😀');
    expect(u.length).toBe(4);
    expect(u.get(3)).toBe('😀');
    expect(u.toArray()).toBe('héy😀');
    u.set(0, 'H');
    expect(u.toArray()).toBe('Héy😀');
    expect(u.view).toBeInstanceOf(Uint32Array);
  });

  it('SharedArray has a lock and getObj(); RawArray has none', () => {
    const a = SharedArray('i', 3);
    expect(a).toBeInstanceOf(SynchronizedArray);
    expect(a).toBeInstanceOf(SharedArray);
    expect(a.getLock()).toBeInstanceOf(RLock);
    const raw = a.getObj();
    raw.set(0, 5);
    expect(a.get(0)).toBe(5);
    expect(() => (raw as unknown as SynchronizedArray).getLock()).toThrow(/RawArray\('i', 3\) has no lock: it is raw/);
    const r = RawArray('i', 3);
    expect(r).toBeInstanceOf(RawSharedArray);
    expect(r).not.toBeInstanceOf(SharedArray);
    const lock = new RLock();
    expect(SharedArray('i', 2, { lock }).getLock()).toBe(lock);
    expect(SharedArray('i', 2, { lock: false })).not.toBeInstanceOf(SynchronizedArray);
    expect(String(SharedArray('i', [1, 2]))).toBe('<SynchronizedArray wrapper for c_int_Array_2([1, 2])>');
  });
});
