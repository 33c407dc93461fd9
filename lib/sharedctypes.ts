// Value, SharedArray, RawValue, RawArray (API.md, Shared memory): Python's sharedctypes over an
// anonymous segment (memfd) whose fd travels; a default lock's words live in the same segment.
//
// Layout of a segment: with a lock of its own, the lock's words at int32 index 0 (RLOCK_WORDS of
// lib/synchronize.ts) and the data after them, 8-aligned (for BigInt64 and Float64); otherwise
// the data at byte 0. Reads and writes are plain typed-array accesses of aligned elements, which
// other processes see at once; a read-modify-write (`v.value += 1`) needs the lock, as in Python.
import { inspect } from 'node:util';
import { Segment } from './segment.js';
import { Lock, RLock, lockAt, RLOCK_WORDS, type AcquireOptions } from './synchronize.js';
import { registerReducer } from './reduction.js';

/** Python's ctypes typecodes; `u` is `c_wchar` (a code point in 4 bytes, as on Linux). */
export type Typecode = 'c' | 'u' | 'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' | 'f' | 'd';

/** What a Value of that typecode reads as. */
export type CValue<T extends Typecode> = T extends 'l' | 'L' | 'q' | 'Q' ? bigint : T extends 'c' ? Buffer : T extends 'u' ? string : number;
/** What may be written to it (checked against the typecode's range). */
export type CInput<T extends Typecode> = T extends 'l' | 'L' | 'q' | 'Q'
  ? bigint | number | boolean
  : T extends 'c'
    ? Uint8Array | string | number
    : T extends 'u'
      ? string
      : number | bigint | boolean;

type Stored = number | bigint;
type Elements = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | Float32Array | Float64Array;
/** The TypedArray a typecode's `view` is (a Buffer for `c`). */
export type CView<T extends Typecode> = T extends 'b'
  ? Int8Array
  : T extends 'c'
    ? Buffer
    : T extends 'B'
      ? Uint8Array
      : T extends 'h'
        ? Int16Array
        : T extends 'H'
          ? Uint16Array
          : T extends 'i'
            ? Int32Array
            : T extends 'I' | 'u'
              ? Uint32Array
              : T extends 'l' | 'q'
                ? BigInt64Array
                : T extends 'L' | 'Q'
                  ? BigUint64Array
                  : T extends 'f'
                    ? Float32Array
                    : Float64Array;

interface Code {
  code: Typecode;
  /** ctypes' name, for messages and toString. */
  ctype: string;
  bytes: number;
  make(buf: ArrayBuffer, offset: number, length: number): Elements;
  /** The stored form of `v`, or throws naming `what` (called with it only when a check fails). */
  put(v: unknown, what: () => string): Stored;
  /** The JS value of a stored element; undefined: the stored number itself. */
  out?: (x: Stored) => unknown;
  zero: Stored;
}

const CODES = 'b B h H i I l L q Q f d c u';

function intCode(code: Typecode, ctype: string, bytes: number, Ctor: new (b: ArrayBuffer, o: number, n: number) => Elements, min: number, max: number): Code {
  return {
    code, ctype, bytes, zero: 0,
    make: (b, o, n) => new Ctor(b, o, n),
    put(v, what) {
      if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
      return intSlow(v, what, min, max, 'int');
    },
  };
}

function bigCode(code: Typecode, ctype: string, signed: boolean): Code {
  const min = signed ? -(1n << 63n) : 0n;
  const max = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
  return {
    code, ctype, bytes: 8, zero: 0n,
    make: (b, o, n) => (signed ? new BigInt64Array(b, o, n) : new BigUint64Array(b, o, n)),
    put(v, what) {
      if (typeof v === 'bigint' && v >= min && v <= max) return v;
      if (typeof v === 'number' && Number.isInteger(v)) {
        const b = BigInt(v);
        if (b >= min && b <= max) return b;
      }
      return intSlow(v, what, min, max, 'bigint');
    },
  };
}

function intSlow(v: unknown, what: () => string, min: number | bigint, max: number | bigint, as: 'int' | 'bigint'): Stored {
  let n: bigint;
  if (typeof v === 'boolean') n = v ? 1n : 0n;
  else if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
  else throw new TypeError(`${what()}: expected an integer${as === 'bigint' ? ' (a BigInt or an integral number)' : ''}, got ${describe(v)}`);
  if (n < BigInt(min) || n > BigInt(max)) throw new RangeError(`${what()}: ${describe(v)} is out of range (${min} to ${max})`);
  return as === 'bigint' ? n : Number(n);
}

const F32_MAX = 3.4028234663852886e38;

function floatCode(code: Typecode, ctype: string, single: boolean): Code {
  return {
    code, ctype, bytes: single ? 4 : 8, zero: 0,
    make: (b, o, n) => (single ? new Float32Array(b, o, n) : new Float64Array(b, o, n)),
    put(v, what) {
      let x: number;
      if (typeof v === 'number') x = v;
      else if (typeof v === 'bigint' || typeof v === 'boolean') x = Number(v);
      else throw new TypeError(`${what()}: expected a number, got ${describe(v)}`);
      // A finite value a float cannot hold would silently become Infinity.
      if (single && Number.isFinite(x) && Math.abs(Math.fround(x)) > F32_MAX) throw new RangeError(`${what()}: ${x} is out of range for a float (at most ±${F32_MAX})`);
      return x;
    },
  };
}

const charCode: Code = {
  code: 'c', ctype: 'c_char', bytes: 1, zero: 0,
  make: (b, o, n) => Buffer.from(b, o, n),
  put(v, what) {
    if (typeof v === 'string' && v.length === 1 && v.charCodeAt(0) <= 0xff) return v.charCodeAt(0);
    if (v instanceof Uint8Array && v.length === 1) return v[0]!;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xff) return v;
    throw new TypeError(`${what()}: expected one byte (a 1-byte Buffer, a 1-character string up to '\\xff', or an integer 0 to 255), got ${describe(v)}`);
  },
  out: (x) => Buffer.of(x as number),
};

const wcharCode: Code = {
  code: 'u', ctype: 'c_wchar', bytes: 4, zero: 0,
  make: (b, o, n) => new Uint32Array(b, o, n),
  put(v, what) {
    if (typeof v === 'string') {
      const c = v.codePointAt(0);
      if (c !== undefined && v.length === (c > 0xffff ? 2 : 1)) return c;
    }
    throw new TypeError(`${what()}: expected a 1-character string, got ${describe(v)}`);
  },
  out: (x) => wchar(x as number),
};

const TABLE: Record<Typecode, Code> = {
  b: intCode('b', 'c_byte', 1, Int8Array, -0x80, 0x7f),
  B: intCode('B', 'c_ubyte', 1, Uint8Array, 0, 0xff),
  h: intCode('h', 'c_short', 2, Int16Array, -0x8000, 0x7fff),
  H: intCode('H', 'c_ushort', 2, Uint16Array, 0, 0xffff),
  i: intCode('i', 'c_int', 4, Int32Array, -0x80000000, 0x7fffffff),
  I: intCode('I', 'c_uint', 4, Uint32Array, 0, 0xffffffff),
  // c_long is 8 bytes on LP64 (Linux, macOS): Python's 'l' there is int64.
  l: bigCode('l', 'c_long', true),
  L: bigCode('L', 'c_ulong', false),
  q: bigCode('q', 'c_longlong', true),
  Q: bigCode('Q', 'c_ulonglong', false),
  f: floatCode('f', 'c_float', true),
  d: floatCode('d', 'c_double', false),
  c: charCode,
  u: wcharCode,
};

function codeOf(typecode: unknown, where: string): Code {
  const c = typeof typecode === 'string' && Object.hasOwn(TABLE, typecode) ? TABLE[typecode as Typecode] : undefined;
  if (!c) throw new TypeError(`${where}: unknown typecode ${describe(typecode)}; use one of ${CODES} (Python's ctypes typecodes)`);
  return c;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `a ${v.length}-byte ${v.constructor.name}`;
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? `a ${v.constructor?.name ?? 'object'}` : typeof v;
}

// ---- the lock option ----

/** The lock of a Value or SharedArray. (Any object with acquire/release that can travel is accepted, as in Python; typed as ours.) */
export type AnyLock = Lock | RLock;

export interface ValueOptions {
  /**
   * true (the default): a new RLock, as in Python, whose words live in the value's own segment.
   * false: no lock (what RawValue/RawArray return). A Lock or RLock (or any object with
   * acquire/release that can travel): guard the value with it.
   */
  lock?: boolean | null | AnyLock;
}

const OWN_DATA = Math.ceil((RLOCK_WORDS * 4) / 8) * 8; // data offset after an own lock's words

/** Where the data is and what guards it; shared by the four classes. */
interface Parts {
  seg: Segment;
  /** Byte offset of the data. */
  offset: number;
  code: Code;
  /** The lock, if any; `own` when its words are at index 0 of `seg`. */
  lock: AnyLock | null;
  own: boolean;
}

function lockOption(where: string, options: ValueOptions | undefined): { lock: boolean | AnyLock } {
  if (options === undefined || options === null) return { lock: true };
  if (typeof options !== 'object') throw new TypeError(`${where}: expected options like { lock }, got ${describe(options)}`);
  const l = options.lock;
  if (l === undefined || l === null || l === true) return { lock: true };
  if (l === false) return { lock: false };
  if (typeof l === 'object' && typeof (l as AnyLock).acquire === 'function' && typeof (l as AnyLock).release === 'function') return { lock: l as AnyLock };
  throw new TypeError(`${where}: lock must be true, false, or a Lock/RLock (an object with acquire and release), got ${describe(l)}`);
}

/** A new segment for `bytes` of data, with an RLock's words in front when `ownLock`. */
function allocate(code: Code, length: number, ownLock: boolean): Parts {
  const offset = ownLock ? OWN_DATA : 0;
  const seg = Segment.create(offset + length * code.bytes);
  const lock = ownLock ? lockAt('RLock', { seg, index: 0 }) : null;
  return { seg, offset, code, lock, own: ownLock };
}

function lockMethodsMissing(name: string): Error {
  return new TypeError(`${name} has no lock: it is raw (RawValue/RawArray, or lock: false). Create it with Value()/SharedArray() for one, or guard it with a Lock of your own`);
}

// ---- values ----

const kParts = Symbol('parts');
const kName = Symbol('name');

/** A single C value in shared memory, without a lock (what `RawValue` returns). */
export class RawSharedValue<T extends Typecode = Typecode> {
  readonly #parts: Parts;
  readonly #a: Elements;
  readonly #code: Code;

  /** @internal */
  constructor(parts: Parts) {
    this.#parts = parts;
    this.#code = parts.code;
    this.#a = parts.code.make(parts.seg.buffer, parts.offset, 1);
  }

  get typecode(): T {
    return this.#code.code as T;
  }

  get value(): CValue<T> {
    const x = this.#a[0]!;
    const out = this.#code.out;
    return (out === undefined ? x : out(x)) as CValue<T>;
  }

  set value(v: CInput<T>) {
    this.#a[0] = this.#code.put(v, () => `${this.#name()}.value`) as never;
  }

  /** @internal */
  get [kParts](): Parts {
    return this.#parts;
  }

  /** @internal For messages. */
  get [kName](): string {
    return this.#name();
  }

  #name(): string {
    return `${this.#parts.lock ? 'Value' : 'RawValue'}('${this.#code.code}')`;
  }

  toString(): string {
    const v = this.value;
    return `${this.#code.ctype}(${v instanceof Uint8Array ? `b'${Array.from(v as Uint8Array, byteRepr).join('')}'` : typeof v === 'string' ? JSON.stringify(v) : String(v)})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * What Value and SharedArray add to the raw objects (Python's `SynchronizedBase`): the lock, and
 * shortcuts to it. Reads and writes do not take it (each is one aligned access); hold it around
 * a read-modify-write such as `v.value += 1`.
 */
export interface Synchronized {
  /** The lock guarding the value or array. */
  getLock(): AnyLock;
  acquire(options?: AcquireOptions): Promise<boolean>;
  acquireSync(options?: AcquireOptions): boolean;
  release(): void;
}

// One implementation for both classes (installed on their prototypes below).
const synchronizedMethods: Synchronized & ThisType<{ [kParts]: Parts }> = {
  getLock() {
    return this[kParts].lock!;
  },
  acquire(options) {
    return (this[kParts].lock as Lock).acquire(options);
  },
  acquireSync(options) {
    return (this[kParts].lock as Lock).acquireSync(options);
  },
  release() {
    this[kParts].lock!.release();
  },
};

/** A C value in shared memory with a lock (what `Value` returns; Python's `Synchronized`). */
export interface SynchronizedValue<T extends Typecode = Typecode> extends Synchronized {}
export class SynchronizedValue<T extends Typecode = Typecode> extends RawSharedValue<T> {
  /** The value without its lock (Python's `get_obj()`): the same shared memory. */
  getObj(): RawSharedValue<T> {
    return new RawSharedValue<T>({ ...this[kParts], lock: null, own: false });
  }

  override toString(): string {
    return `<Synchronized wrapper for ${super.toString()}>`;
  }
}

function byteRepr(b: number): string {
  return b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
}

function newValue(where: string, typecode: unknown, init: unknown, ownLock: boolean): Parts {
  const code = codeOf(typecode, where);
  // Checked before anything is allocated.
  const stored = init === undefined ? code.zero : code.put(init, () => `${where}('${code.code}', …)`);
  const parts = allocate(code, 1, ownLock);
  code.make(parts.seg.buffer, parts.offset, 1)[0] = stored as never;
  return parts;
}

function makeValue(typecode: unknown, init: unknown, options: ValueOptions | undefined): RawSharedValue | SynchronizedValue {
  const { lock } = lockOption('Value', options);
  const parts = newValue('Value', typecode, init, lock === true);
  if (lock === false) return new RawSharedValue(parts);
  if (lock !== true) parts.lock = lock;
  return new SynchronizedValue(parts);
}

// ---- arrays ----

/** An array of C values in shared memory, without a lock (what `RawArray` returns). */
export class RawSharedArray<T extends Typecode = Typecode> {
  readonly #parts: Parts;
  readonly #a: Elements;
  readonly #code: Code;
  readonly length: number;

  /** @internal */
  constructor(parts: Parts, length: number) {
    this.#parts = parts;
    this.#code = parts.code;
    this.length = length;
    this.#a = parts.code.make(parts.seg.buffer, parts.offset, length);
  }

  get typecode(): T {
    return this.#code.code as T;
  }

  /** A TypedArray over the shared elements (a Buffer for 'c'): writes through it are shared at once. */
  get view(): CView<T> {
    return this.#a as CView<T>;
  }

  /** Element `i`; a negative `i` counts from the end, as in Python. */
  get(i: number): CValue<T> {
    const x = this.#a[this.#index(i, 'get')]!;
    const out = this.#code.out;
    return (out === undefined ? x : out(x)) as CValue<T>;
  }

  set(i: number, v: CInput<T>): void {
    const k = this.#index(i, 'set');
    this.#a[k] = this.#code.put(v, () => `${this.#name()}.set(${i}, …)`) as never;
  }

  /**
   * A copy of the elements: an Array of numbers (BigInts for l L q Q), a Buffer for 'c', a string
   * for 'u' (Python's `a[:]`). Not taken under the lock: hold getLock() for a consistent copy.
   */
  toArray(): T extends 'c' ? Buffer : T extends 'u' ? string : CValue<T>[] {
    const a = this.#a;
    if (this.#code.code === 'c') return Buffer.from(a as Uint8Array) as never;
    if (this.#code.code === 'u') return codePoints(a as Uint32Array) as never;
    return Array.from(a as ArrayLike<Stored>) as never;
  }

  *[Symbol.iterator](): IterableIterator<CValue<T>> {
    for (let i = 0; i < this.length; i++) yield this.get(i);
  }

  /** 'c' arrays (Python's `.value`): the bytes up to the first NUL; set: bytes (a NUL follows if room). */
  get value(): T extends 'c' ? Buffer : never {
    const b = this.#bytes('value');
    const end = b.indexOf(0);
    return Buffer.from(end < 0 ? b : b.subarray(0, end)) as never;
  }

  set value(v: Uint8Array | string) {
    const b = this.#bytes('value');
    const src = this.#bytesArg(v, 'value');
    b.set(src);
    if (src.length < b.length) b[src.length] = 0;
  }

  /** 'c' arrays (Python's `.raw`): all the bytes; set: writes them from the start. */
  get raw(): T extends 'c' ? Buffer : never {
    return Buffer.from(this.#bytes('raw')) as never;
  }

  set raw(v: Uint8Array | string) {
    this.#bytes('raw').set(this.#bytesArg(v, 'raw'));
  }

  /** @internal */
  get [kParts](): Parts {
    return this.#parts;
  }

  /** @internal For messages. */
  get [kName](): string {
    return this.#name();
  }

  #index(i: number, method: string): number {
    const n = this.length;
    if (typeof i !== 'number' || !Number.isInteger(i)) throw new TypeError(`${this.#name()}.${method}(): the index must be an integer, got ${describe(i)}`);
    const k = i < 0 ? i + n : i;
    if (k < 0 || k >= n) throw new RangeError(`${this.#name()}.${method}(${i}): index out of range for length ${n}`);
    return k;
  }

  #bytes(prop: string): Buffer {
    if (this.#code.code !== 'c') throw new TypeError(`${this.#name()}.${prop}: only 'c' (char) arrays have .${prop}; use toArray()`);
    return this.#a as Buffer;
  }

  #bytesArg(v: unknown, prop: string): Uint8Array {
    const src = typeof v === 'string' ? latin1(v, () => `${this.#name()}.${prop}`) : v;
    if (!(src instanceof Uint8Array)) throw new TypeError(`${this.#name()}.${prop}: expected a Buffer or a string, got ${describe(v)}`);
    if (src.length > this.length) throw new RangeError(`${this.#name()}.${prop}: ${src.length} bytes do not fit in ${this.length}`);
    return src;
  }

  #name(): string {
    return `${this.#parts.lock ? 'SharedArray' : 'RawArray'}('${this.#code.code}', ${this.length})`;
  }

  toString(): string {
    const body = this.#code.code === 'c' ? `b'${[...(this.#a as Buffer)].map(byteRepr).join('')}'` : this.#code.code === 'u' ? JSON.stringify(this.toArray()) : `[${(this.toArray() as unknown[]).join(', ')}]`;
    return `${this.#code.ctype}_Array_${this.length}(${body})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** An array of C values in shared memory with a lock (what `SharedArray` returns; Python's `SynchronizedArray`). */
export interface SynchronizedArray<T extends Typecode = Typecode> extends Synchronized {}
export class SynchronizedArray<T extends Typecode = Typecode> extends RawSharedArray<T> {
  /** The array without its lock (Python's `get_obj()`): the same shared memory. */
  getObj(): RawSharedArray<T> {
    return new RawSharedArray<T>({ ...this[kParts], lock: null, own: false }, this.length);
  }

  override toString(): string {
    return `<SynchronizedArray wrapper for ${super.toString()}>`;
  }
}

/** A wchar as a string; what is no code point (written through `view`) reads as U+FFFD. */
function wchar(x: number): string {
  return x <= 0x10ffff ? String.fromCodePoint(x) : '\ufffd';
}

function codePoints(a: Uint32Array): string {
  let s = '';
  for (let i = 0; i < a.length; i++) s += wchar(a[i]!);
  return s;
}

function latin1(s: string, what: () => string): Buffer {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) throw new TypeError(`${what()}: the string has a character above '\\xff' at ${i}; pass a Buffer (for example Buffer.from(s, 'utf8'))`);
  }
  return Buffer.from(s, 'latin1');
}

function newArray(where: string, typecode: unknown, sizeOrValues: unknown, ownLock: boolean): { parts: Parts; length: number } {
  const code = codeOf(typecode, where);
  const name = () => `${where}('${code.code}', …)`;
  let values: Stored[] | Uint8Array | null = null;
  let length: number;
  if (typeof sizeOrValues === 'number') {
    if (!Number.isSafeInteger(sizeOrValues) || sizeOrValues < 0) throw new RangeError(`${name()}: the size must be an integer >= 0, got ${sizeOrValues}`);
    length = sizeOrValues;
  } else if (code.code === 'c' && (typeof sizeOrValues === 'string' || sizeOrValues instanceof Uint8Array)) {
    values = typeof sizeOrValues === 'string' ? latin1(sizeOrValues, name) : sizeOrValues;
    length = values.length;
  } else if (code.code === 'u' && typeof sizeOrValues === 'string') {
    values = Array.from(sizeOrValues, (ch) => code.put(ch, name));
    length = values.length;
  } else if (sizeOrValues !== null && typeof sizeOrValues === 'object' && (Symbol.iterator in sizeOrValues || 'length' in sizeOrValues)) {
    const src = Symbol.iterator in sizeOrValues ? [...(sizeOrValues as Iterable<unknown>)] : Array.from(sizeOrValues as ArrayLike<unknown>);
    values = src.map((v, i) => code.put(v, () => `${where}('${code.code}', …) at index ${i}`));
    length = values.length;
  } else {
    throw new TypeError(`${name()}: expected a size or an iterable of initial values, got ${describe(sizeOrValues)}`);
  }
  const parts = allocate(code, length, ownLock);
  if (values) {
    const a = code.make(parts.seg.buffer, parts.offset, length);
    for (let i = 0; i < length; i++) a[i] = values[i] as never;
  }
  return { parts, length };
}

function makeArray(typecode: unknown, sizeOrValues: unknown, options: ValueOptions | undefined): RawSharedArray | SynchronizedArray {
  const { lock } = lockOption('SharedArray', options);
  const { parts, length } = newArray('SharedArray', typecode, sizeOrValues, lock === true);
  if (lock === false) return new RawSharedArray(parts, length);
  if (lock !== true) parts.lock = lock;
  return new SynchronizedArray(parts, length);
}

// ---- the factories (Python's functions; `new` works too) ----

export interface ValueFactory {
  <T extends Typecode>(typecode: T, init?: CInput<T>, options?: ValueOptions & { lock?: true | null | AnyLock }): SynchronizedValue<T>;
  <T extends Typecode>(typecode: T, init: CInput<T> | undefined, options: { lock: false }): RawSharedValue<T>;
  <T extends Typecode>(typecode: T, init?: CInput<T>, options?: ValueOptions): RawSharedValue<T> | SynchronizedValue<T>;
  new <T extends Typecode>(typecode: T, init?: CInput<T>, options?: ValueOptions & { lock?: true | null | AnyLock }): SynchronizedValue<T>;
  new <T extends Typecode>(typecode: T, init: CInput<T> | undefined, options: { lock: false }): RawSharedValue<T>;
  readonly prototype: SynchronizedValue;
}

export interface RawValueFactory {
  <T extends Typecode>(typecode: T, init?: CInput<T>): RawSharedValue<T>;
  new <T extends Typecode>(typecode: T, init?: CInput<T>): RawSharedValue<T>;
  readonly prototype: RawSharedValue;
}

type ArrayInit<T extends Typecode> = number | Iterable<CInput<T>> | ArrayLike<CInput<T>> | (T extends 'c' ? Uint8Array | string : T extends 'u' ? string : never);

export interface SharedArrayFactory {
  <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>, options?: ValueOptions & { lock?: true | null | AnyLock }): SynchronizedArray<T>;
  <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>, options: { lock: false }): RawSharedArray<T>;
  <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>, options?: ValueOptions): RawSharedArray<T> | SynchronizedArray<T>;
  new <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>, options?: ValueOptions & { lock?: true | null | AnyLock }): SynchronizedArray<T>;
  new <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>, options: { lock: false }): RawSharedArray<T>;
  readonly prototype: SynchronizedArray;
}

export interface RawArrayFactory {
  <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>): RawSharedArray<T>;
  new <T extends Typecode>(typecode: T, sizeOrValues: ArrayInit<T>): RawSharedArray<T>;
  readonly prototype: RawSharedArray;
}

/** A C value in shared memory guarded by a lock (an RLock of its own unless `lock` says otherwise). */
export const Value = function Value(typecode: Typecode, init?: unknown, options?: ValueOptions) {
  return makeValue(typecode, init, options);
} as unknown as ValueFactory;

/** A C value in shared memory without a lock. */
export const RawValue = function RawValue(typecode: Typecode, init?: unknown) {
  return new RawSharedValue(newValue('RawValue', typecode, init, false));
} as unknown as RawValueFactory;

/** An array of C values in shared memory guarded by a lock (Python's `multiprocessing.Array`). */
export const SharedArray = function SharedArray(typecode: Typecode, sizeOrValues: unknown, options?: ValueOptions) {
  return makeArray(typecode, sizeOrValues, options);
} as unknown as SharedArrayFactory;

/** An array of C values in shared memory without a lock. */
export const RawArray = function RawArray(typecode: Typecode, sizeOrValues: unknown) {
  const { parts, length } = newArray('RawArray', typecode, sizeOrValues, false);
  return new RawSharedArray(parts, length);
} as unknown as RawArrayFactory;

// Raw objects have no getLock() (nor does their type): calling it anyway says why.
for (const cls of [RawSharedValue, RawSharedArray]) {
  Object.defineProperty(cls.prototype, 'getLock', {
    value: function getLock(this: { [kName]: string }): never {
      throw lockMethodsMissing(this[kName]);
    },
    writable: true,
    configurable: true,
  });
}

for (const cls of [SynchronizedValue, SynchronizedArray]) {
  for (const [k, f] of Object.entries(synchronizedMethods)) Object.defineProperty(cls.prototype, k, { value: f, writable: true, configurable: true });
}

// `x instanceof Value` and friends ask the classes.
(Value as { prototype: object }).prototype = SynchronizedValue.prototype;
(RawValue as { prototype: object }).prototype = RawSharedValue.prototype;
(SharedArray as { prototype: object }).prototype = SynchronizedArray.prototype;
(RawArray as { prototype: object }).prototype = RawSharedArray.prototype;

// ---- how they travel ----
//
// The segment's fd (SCM_RIGHTS) and where the data is. An own lock travels as its kind and spin
// (its words are in the same segment); any other lock travels as itself, a nested handle.

interface CState {
  code: Typecode;
  /** -1 for a single value. */
  length: number;
  fd: number;
  offset: number;
  own: { kind: 'Lock' | 'RLock'; spinMs: number } | null;
  lock: AnyLock | null;
}

function reduceParts(p: Parts, length: number, ctx: { addFd(fd: number): number }): CState {
  let own: CState['own'] = null;
  if (p.own) {
    const l = p.lock as Lock | RLock;
    own = { kind: l instanceof RLock ? 'RLock' : 'Lock', spinMs: l.word.spinMs };
  }
  return { code: p.code.code, length, fd: ctx.addFd(p.seg.fd), offset: p.offset, own, lock: p.own ? null : p.lock };
}

function rebuildParts(s: CState, ctx: { fd(i: number): number }): Parts {
  const seg = Segment.adopt(ctx.fd(s.fd));
  const code = codeOf(s.code, 'a shared value from another process');
  const lock = s.own ? lockAt(s.own.kind, { seg, index: 0 }, s.own.spinMs) : s.lock;
  return { seg, offset: s.offset, code, lock, own: s.own !== null };
}

registerReducer<RawSharedValue, CState>({
  type: 'RawValue',
  cls: RawSharedValue,
  reduce: (v, ctx) => reduceParts(v[kParts], -1, ctx),
  rebuild: (s, ctx) => new RawSharedValue(rebuildParts(s, ctx)),
});
registerReducer<SynchronizedValue, CState>({
  type: 'Value',
  cls: SynchronizedValue,
  reduce: (v, ctx) => reduceParts(v[kParts], -1, ctx),
  rebuild: (s, ctx) => new SynchronizedValue(rebuildParts(s, ctx)),
});
registerReducer<RawSharedArray, CState>({
  type: 'RawArray',
  cls: RawSharedArray,
  reduce: (a, ctx) => reduceParts(a[kParts], a.length, ctx),
  rebuild: (s, ctx) => new RawSharedArray(rebuildParts(s, ctx), s.length),
});
registerReducer<SynchronizedArray, CState>({
  type: 'SharedArray',
  cls: SynchronizedArray,
  reduce: (a, ctx) => reduceParts(a[kParts], a.length, ctx),
  rebuild: (s, ctx) => new SynchronizedArray(rebuildParts(s, ctx), s.length),
});
