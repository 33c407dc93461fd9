// The message codec of multiproc: every value sent through a Connection, queue or pool becomes bytes here.
// Semantics are exactly v8.deserialize(v8.serialize(x)); common values take a compact path that is much faster.
//
// Format. Byte 0 says which encoding the rest of the message uses:
//   0xFF        the whole message is v8.serialize output, unmodified (0xFF is v8's own header byte).
//               Used as soon as anything the compact form does not cover appears anywhere in the value.
//   0x01        compact, version 1: exactly one value follows.
//   0x02 u32 k  the same, and k fds travel with the message (SCM_RIGHTS); handles refer to them by index.
//   0xFE u32 k  v8.serialize output of the value with its handles swapped for markers (reduction.ts),
//               and k fds.
//   all others  reserved (0x03..0xFD for future compact versions); decode rejects them.
// Compact value: a tag byte, then its payload; multi-byte numbers are little-endian.
//   0x00 undefined   0x01 null   0x02 false   0x03 true
//   0x80|n           integer 0 <= n < 128
//   0x04 i32         other int32 values
//   0x05 f64         every other number (-0, NaN and ±Infinity included)
//   0x06 u8 n  bytes   string, n ASCII bytes        0x07 u32 n bytes   same, long
//   0x08 u8 n  bytes   string, n bytes of UTF-8     0x09 u32 n bytes   same, long
//   0x0A u32 n units   string with lone surrogates, n UTF-16LE code units
//   0x0B u32 n values  dense Array with Array.prototype, no extra properties
//   0x0C (string value)* 0x0D   plain object (prototype Object.prototype), keys in enumeration order
//   0x0E u32 n bytes   Buffer (decodes to a Buffer on a fresh ArrayBuffer of exactly n bytes)
//   0x0F u8 kind u32 n bytes   typed array, kind = index in TYPED; decodes to a fresh, exact ArrayBuffer
//   0x10 u32 n, n f64  dense Array (as 0x0B) of numbers only: no per-element tags
//   0x11 (string type) (value state)   a handle (Connection, Queue, …): its reducer's type and state
//   0x12 u32 n, n i32  dense Array (as 0x0B) of int32 numbers only (no -0): half the bytes of 0x10
// No object appears twice in a compact message: aliasing and cycles need v8's back-references.

import v8 from 'node:v8';
import { types } from 'node:util';
import {
  holdsHandles, markHandles, rebuildHandles, reducerNamed, reducerOf, registerReducer,
  type RebuildContext, type ReduceContext, type Reducer,
} from './reduction.js';

/** Buffer's undocumented but long-stable native string methods: no encoding dispatch, no argument juggling. */
type Bytes = Buffer & {
  utf8Write(s: string, offset: number, max: number): number;
  ucs2Write(s: string, offset: number, max: number): number;
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  ucs2Slice(start: number, end: number): string;
};
type WellFormed = string & { isWellFormed(): boolean }; // ES2024, present in Node 20; not in our TS lib

const V8_FORMAT = 0xff;
const COMPACT_V1 = 0x01;
const COMPACT_FDS = 0x02;
const V8_HANDLES = 0xfe;

const T_UNDEFINED = 0x00, T_NULL = 0x01, T_FALSE = 0x02, T_TRUE = 0x03;
const T_I32 = 0x04, T_F64 = 0x05;
const T_ASCII8 = 0x06, T_ASCII32 = 0x07, T_UTF8_8 = 0x08, T_UTF8_32 = 0x09, T_UTF16 = 0x0a;
const T_ARRAY = 0x0b, T_OBJECT = 0x0c, T_END = 0x0d, T_BUFFER = 0x0e, T_TYPED = 0x0f, T_NUMBERS = 0x10;
const T_HANDLE = 0x11, T_INTS = 0x12;
const T_SMALL = 0x80;

// Node's serializer knows exactly these (plus DataView); the order is our wire `kind`, never reorder.
const TYPED = [
  Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
] as const;
type Typed = InstanceType<(typeof TYPED)[number]>;
const KIND = new Map<string, number>(TYPED.map((C, i) => [C.name, i]));
// %TypedArray%.prototype[@@toStringTag] reads the internal slot: the real element type, immune to
// prototype games, undefined for anything that is not a typed array. Node's serializer goes by this tag.
const typedArrayName = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!.get! as (this: unknown) => string | undefined;

const INITIAL_SCRATCH = 16 * 1024;
const KEEP_SCRATCH = 1024 * 1024; // a scratch that grew past this is dropped rather than kept forever
const MAX_DEPTH = 1000; // deeper values go to v8, whose stack limit and error are then the ones that apply
const SHORT_STRING = 16; // below this a JS loop beats a native call (measured)
const LINEAR_SEEN = 32; // identity checks scan an array up to this many objects, then use a Set
const CACHED_VIEWS = 512; // encodeScratch results shorter than this reuse a view made earlier
const MIN_PACKED = 16; // arrays from this length are tried as all-numbers (T_NUMBERS, T_INTS)

const FALLBACK = Symbol('use v8'); // thrown through the compact writer; never escapes this module

function alloc(n: number): Bytes {
  return Buffer.allocUnsafeSlow(n) as Bytes;
}

/**
 * @internal An Array of numbers that its maker built dense and plain (no holes, no extra
 * properties, Array.prototype): it encodes as that Array would (T_NUMBERS / T_INTS, decoded as a
 * plain Array) without the key check an arbitrary Array needs. The pool's chunks and results.
 */
export class DenseNumbers {
  constructor(readonly values: number[]) {}
}

// Where a message goes to v8 (something else in it needs v8), it travels as its Array.
registerReducer<DenseNumbers, number[]>({
  type: 'DenseNumbers',
  cls: DenseNumbers,
  reduce: (d) => d.values,
  rebuild: (a) => a as unknown as DenseNumbers, // the receiver gets the Array itself
});

class Encoder {
  buf: Bytes;
  dv: DataView; // over buf: TurboFan turns its accessors into plain loads and stores
  pos = 0;
  depth = 0;
  /** Result views over buf, by length: small messages come in few lengths and need no new view. */
  private views = new Array<Buffer | undefined>(CACHED_VIEWS);
  private polluted = false;
  private seen: (object | undefined)[] = [];
  private nseen = 0;
  private seenSet = new Set<object>(); // in use once nseen reaches LINEAR_SEEN
  // For the handles of the message being encoded; the context is made only if one is met.
  private label: string | undefined;
  private fds: number[] | undefined;
  private ctx: ReduceContext | null = null;

  constructor(size: number) {
    this.buf = alloc(size);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /**
   * Encodes into buf[0, pos) and returns null, or returns the fresh Buffer of the v8 fallback.
   * Handles' fds are appended to `fds`; without it, a handle that needs an fd is refused.
   */
  run(value: unknown, label: string | undefined, fds: number[] | undefined): Buffer | null {
    this.pos = 0;
    this.depth = 0;
    this.polluted = prototypePolluted();
    this.label = label;
    this.fds = fds;
    const base = fds?.length ?? 0;
    try {
      this.ensure(1);
      this.buf[this.pos++] = COMPACT_V1;
      this.value(value);
    } catch (e) {
      if (e !== FALLBACK) throw e;
      if (fds) fds.length = base; // the compact attempt's fds are collected again
      return viaV8(value, label, fds, base);
    } finally {
      this.ctx = null;
      this.fds = undefined;
      this.forget();
    }
    const k = (fds?.length ?? 0) - base;
    if (k > 0) {
      // Rare (messages that carry fds): make room for the count after the format byte.
      this.ensure(4);
      this.buf.copyWithin(5, 1, this.pos);
      this.buf[0] = COMPACT_FDS;
      this.dv.setUint32(1, k, true);
      this.pos += 4;
    }
    return null;
  }

  view(): Buffer {
    const n = this.pos;
    if (n >= CACHED_VIEWS) return this.buf.subarray(0, n);
    return (this.views[n] ??= this.buf.subarray(0, n));
  }

  /** Drops references to the caller's objects so they are not kept alive by the scratch encoder. */
  private forget(): void {
    const seen = this.seen;
    for (let i = 0; i < this.nseen; i++) seen[i] = undefined;
    if (this.nseen === LINEAR_SEEN) this.seenSet.clear();
    this.nseen = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const next = alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.dv = new DataView(next.buffer, next.byteOffset, next.length);
    this.views = new Array<Buffer | undefined>(CACHED_VIEWS);
  }

  private u32(n: number): void {
    this.dv.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  private value(v: unknown): void {
    switch (typeof v) {
      case 'number': return this.number(v);
      case 'string': return this.string(v);
      case 'boolean': this.ensure(1); this.buf[this.pos++] = v ? T_TRUE : T_FALSE; return;
      case 'undefined': this.ensure(1); this.buf[this.pos++] = T_UNDEFINED; return;
      case 'object':
        if (v === null) { this.ensure(1); this.buf[this.pos++] = T_NULL; return; }
        return this.object(v);
      default: throw FALLBACK; // bigint goes to v8; functions and symbols go there to be refused
    }
  }

  private number(v: number): void {
    this.ensure(9);
    const p = this.pos;
    if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
      if (v >= 0 && v < 128) { this.buf[p] = T_SMALL | v; this.pos = p + 1; return; }
      this.buf[p] = T_I32;
      this.dv.setInt32(p + 1, v, true);
      this.pos = p + 5;
      return;
    }
    this.buf[p] = T_F64;
    this.dv.setFloat64(p + 1, v, true);
    this.pos = p + 9;
  }

  private string(s: string): void {
    const n = s.length;
    if (n < SHORT_STRING) {
      this.ensure(2 + n);
      const b = this.buf, p = this.pos + 2;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[p + i] = c;
      }
      if (i === n) {
        b[p - 2] = T_ASCII8; b[p - 1] = n;
        this.pos = p + n;
        return;
      }
    }
    // UTF-8 first: if every unit came out as one byte the string was ASCII and needs no other check.
    const max = 3 * n;
    const head = max <= 0xff ? 2 : 5;
    this.ensure(head + max);
    const p = this.pos;
    const len = this.buf.utf8Write(s, p + head, max);
    if (len !== n && !(s as WellFormed).isWellFormed()) {
      // UTF-8 cannot carry lone surrogates (they would become U+FFFD); UTF-16 carries anything.
      this.ensure(5 + 2 * n);
      this.buf[p] = T_UTF16;
      this.pos = p + 1;
      this.u32(n);
      this.pos += this.buf.ucs2Write(s, this.pos, 2 * n);
      return;
    }
    const ascii = len === n;
    if (head === 2) {
      this.buf[p] = ascii ? T_ASCII8 : T_UTF8_8;
      this.buf[p + 1] = len;
      this.pos = p + 2 + len;
    } else {
      this.buf[p] = ascii ? T_ASCII32 : T_UTF8_32;
      this.pos = p + 1;
      this.u32(len);
      this.pos += len;
    }
  }

  private object(o: object): void {
    // A typed array first: the tag getter reads an internal slot (a Proxy has none and runs no trap),
    // and a typed array is a leaf, so it needs neither the Proxy check nor the depth count.
    const name = typedArrayName.call(o);
    if (name !== undefined) {
      this.visit(o);
      this.typed(o, Object.getPrototypeOf(o), name);
      return;
    }
    if (types.isProxy(o)) throw FALLBACK; // before anything that could run a trap
    this.visit(o);
    if (++this.depth > MAX_DEPTH) throw FALLBACK;
    if (Array.isArray(o)) {
      if (Object.getPrototypeOf(o) !== Array.prototype) throw FALLBACK;
      this.array(o);
    } else {
      const proto = Object.getPrototypeOf(o);
      if (proto === Object.prototype) this.plain(o);
      else if (proto === DenseNumbers.prototype) {
        const a = (o as DenseNumbers).values;
        this.visit(a); // the Array itself met twice keeps the identity rule
        this.dense(a);
      }
      else {
        const r = reducerOf(o);
        if (r) this.handle(o, r);
        else throw FALLBACK;
      }
    }
    this.depth--;
  }

  /** Structured clone keeps identity: an object met twice (shared or cyclic) needs v8's back-references. */
  private visit(o: object): void {
    const n = this.nseen;
    if (n < LINEAR_SEEN) {
      const seen = this.seen;
      for (let i = 0; i < n; i++) if (seen[i] === o) throw FALLBACK;
      seen[n] = o;
      this.nseen = n + 1;
      if (n + 1 === LINEAR_SEEN) for (let i = 0; i <= n; i++) this.seenSet.add(seen[i]!);
      return;
    }
    const size = this.seenSet.size;
    if (this.seenSet.add(o).size === size) throw FALLBACK; // one hash lookup instead of has + add
  }

  private array(a: unknown[]): void {
    const n = a.length;
    // Keys come sorted, indices first: n keys ending with n-1 are exactly 0..n-1, so no holes, no
    // non-enumerable elements and no extra named properties. O(n), but nothing in JS is cheaper.
    const keys = Object.keys(a);
    if (keys.length !== n || (n > 0 && keys[n - 1] !== String(n - 1))) throw FALLBACK;
    let i = 0;
    if (n >= MIN_PACKED) {
      i = this.numbers(a);
      if (i === n) return;
    } else {
      this.ensure(5);
      this.buf[this.pos++] = T_ARRAY;
      this.u32(n);
    }
    for (; i < n; i++) this.value(a[i]);
  }

  /**
   * Writes `a` as T_NUMBERS (T_INTS when every one is an int32) as far as it holds numbers and
   * returns n. At the first non-number it rewrites what it has as the start of a T_ARRAY instead
   * and returns where the caller goes on (elements are read once: a getter must not run twice).
   */
  private numbers(a: unknown[]): number {
    const n = a.length, start = this.pos;
    this.ensure(5 + 8 * n);
    const dv = this.dv;
    let p = start + 5;
    let i = 0, v: unknown, ints = true;
    for (; i < n; i++) {
      v = a[i];
      if (typeof v !== 'number') break;
      if (ints && ((v | 0) !== v || (v === 0 && 1 / v < 0))) ints = false;
      dv.setFloat64(p, v, true);
      p += 8;
    }
    if (i === n) {
      this.packed(start, n, ints);
      return n;
    }
    this.buf[start] = T_ARRAY;
    dv.setUint32(start + 1, n, true);
    this.pos = start + 5;
    if (i > 0) {
      // Re-emitting in tagged form can overtake the doubles still to be read: take them out first.
      const done = new DataView(this.buf.buffer.slice(this.buf.byteOffset + start + 5, this.buf.byteOffset + p));
      for (let j = 0; j < i; j++) this.number(done.getFloat64(8 * j, true));
    }
    this.value(v);
    return i + 1;
  }

  /** The n doubles written at `start + 5` become a T_NUMBERS, or a T_INTS of half the size. */
  private packed(start: number, n: number, ints: boolean): void {
    const dv = this.dv;
    dv.setUint32(start + 1, n, true);
    const body = start + 5;
    if (!ints) {
      this.buf[start] = T_NUMBERS;
      this.pos = body + 8 * n;
      return;
    }
    // In place, front to back: each int32 lands at or before the double it comes from.
    this.buf[start] = T_INTS;
    for (let i = 0; i < n; i++) dv.setInt32(body + 4 * i, dv.getFloat64(body + 8 * i, true), true);
    this.pos = body + 4 * n;
  }

  /** A DenseNumbers' array: its maker vouches it has no holes or extra properties, so no key check. */
  private dense(a: number[]): void {
    const n = a.length, start = this.pos;
    this.ensure(5 + 8 * n);
    const dv = this.dv;
    let p = start + 5, ints = true;
    for (let i = 0; i < n; i++) {
      const v = a[i];
      if (typeof v !== 'number') throw new TypeError('codec: a DenseNumbers holds a non-number (a bug of multiproc)');
      if (ints && ((v | 0) !== v || (v === 0 && 1 / v < 0))) ints = false;
      dv.setFloat64(p, v, true);
      p += 8;
    }
    this.packed(start, n, ints);
  }

  private handle(o: object, r: Reducer): void {
    const state = r.reduce(o, (this.ctx ??= reduceContext(this.label, this.fds)));
    this.ensure(1);
    this.buf[this.pos++] = T_HANDLE;
    this.string(r.type);
    this.value(state);
  }

  private plain(o: object): void {
    this.ensure(1);
    this.buf[this.pos++] = T_OBJECT;
    // for-in (unlike Object.keys) allocates nothing and, like v8's serializer, skips a key that a
    // getter deleted meanwhile. With Object.prototype clean it yields exactly the own enumerable keys.
    for (const k in o) {
      if (this.polluted && !Object.hasOwn(o, k)) continue;
      this.string(k);
      this.value((o as Record<string, unknown>)[k]);
    }
    this.ensure(1);
    this.buf[this.pos++] = T_END;
  }

  private typed(o: object, proto: object | null, name: string): void {
    const t = o as Typed;
    let tag: number, kind = 0;
    // Node's serializer picks Buffer by `constructor === Buffer` and otherwise uses the element type;
    // anything but the exact built-in prototype and constructor is left to it.
    if (proto === Buffer.prototype) {
      if (name !== 'Uint8Array' || t.constructor !== Buffer) throw FALLBACK;
      tag = T_BUFFER;
    } else {
      kind = KIND.get(name)!;
      const C = TYPED[kind];
      if (proto !== C.prototype || t.constructor !== C) throw FALLBACK;
      tag = T_TYPED;
    }
    const n = t.byteLength;
    if (n > 0xffffffff) throw FALLBACK;
    if (n === 0) {
      // Maybe detached or out of bounds: Node's serializer makes this very view and throws if it can't.
      try { new Uint8Array(t.buffer, t.byteOffset, 0); } catch { throw FALLBACK; }
    }
    this.ensure(6 + n);
    const b = this.buf;
    b[this.pos++] = tag;
    if (tag === T_TYPED) b[this.pos++] = kind;
    this.u32(n);
    b.set(kind === 0 ? (t as Uint8Array) : new Uint8Array(t.buffer, t.byteOffset, n), this.pos);
    this.pos += n;
  }
}

function prototypePolluted(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

let shared = new Encoder(INITIAL_SCRATCH);
let busy = false; // set while `shared` is in use: a getter that encodes must not clobber it

/** Encodes into a module-owned scratch buffer; the returned view is valid only until the next encode call. Zero allocations per call on the common path. */
export function encodeScratch(value: unknown, label?: string, fds?: number[]): Buffer {
  if (busy) return encodePrivately(value, label, fds); // re-entered from a getter
  busy = true;
  try {
    const enc = shared;
    const out = enc.run(value, label, fds) ?? enc.view();
    if (enc.buf.length > KEEP_SCRATCH) shared = new Encoder(INITIAL_SCRATCH); // big one lives on in `out` only
    return out;
  } finally {
    busy = false;
  }
}

/** Same, but returns a fresh Buffer the caller owns. */
export function encode(value: unknown, label?: string, fds?: number[]): Buffer {
  if (busy) return encodePrivately(value, label, fds);
  busy = true;
  try {
    const enc = shared;
    const v8bytes = enc.run(value, label, fds);
    if (v8bytes !== null) return v8bytes;
    if (enc.buf.length > KEEP_SCRATCH) {
      shared = new Encoder(INITIAL_SCRATCH); // hand the big scratch over instead of copying it
      return enc.view();
    }
    const n = enc.pos, src = enc.buf;
    const out = Buffer.allocUnsafe(n);
    if (n <= 32) for (let i = 0; i < n; i++) out[i] = src[i]; // beats the native copy's call overhead
    else src.copy(out, 0, 0, n);
    return out;
  } finally {
    busy = false;
  }
}

/**
 * A plain Buffer's message size when it can be written straight into its destination by
 * writeBufferMessage (no scratch, one copy), else -1. A queue puts Buffers this way.
 */
export function bufferMessageSize(value: unknown): number {
  if (typeof value !== 'object' || value === null || typedArrayName.call(value) !== 'Uint8Array') return -1;
  if (Object.getPrototypeOf(value) !== Buffer.prototype || (value as Buffer).constructor !== Buffer) return -1;
  const n = (value as Buffer).byteLength;
  return n === 0 ? -1 : 6 + n; // an empty one may be detached: the full path decides
}

/** Writes the message of `value` (bufferMessageSize said yes) at dst[at]: exactly what encode makes of it. */
export function writeBufferMessage(value: Buffer, dst: Uint8Array, at: number): void {
  const n = value.byteLength;
  dst[at] = COMPACT_V1;
  dst[at + 1] = T_BUFFER;
  dst[at + 2] = n & 0xff;
  dst[at + 3] = (n >>> 8) & 0xff;
  dst[at + 4] = (n >>> 16) & 0xff;
  dst[at + 5] = n >>> 24;
  dst.set(value, at + 6);
}

function encodePrivately(value: unknown, label: string | undefined, fds: number[] | undefined): Buffer {
  const enc = new Encoder(256);
  return enc.run(value, label, fds) ?? enc.view();
}

function reduceContext(label: string | undefined, fds: number[] | undefined): ReduceContext {
  return {
    addFd(fd: number): number {
      if (!fds) throw new TypeError(`${label ?? 'encode'}: this channel cannot carry file descriptors; send Connections over a duplex Connection or pass them in Process args`);
      return fds.push(fd) - 1;
    },
  };
}

function viaV8(value: unknown, label: string | undefined, fds: number[] | undefined, base: number): Buffer {
  // Handles must not reach v8 as plain objects: swap them for markers first.
  const handles = holdsHandles(value);
  let bytes: Buffer;
  try {
    bytes = v8.serialize(handles ? markHandles(value, reduceContext(label, fds)) : value);
  } catch (err) {
    throw explain(value, label, err);
  }
  if (!handles) return bytes;
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = V8_HANDLES;
  out.writeUInt32LE((fds?.length ?? 0) - base, 1);
  bytes.copy(out, 5);
  return out;
}

// ---- decoding -------------------------------------------------------------------------------------

// Module state instead of a per-call reader object; decode saves and restores it, so a re-entrant call
// (only possible through setters planted on built-in prototypes) cannot corrupt an outer one, and
// nothing keeps the caller's input alive after the call.
let rb: Bytes = alloc(0);
let rp = 0;
let rend = 0; // the end of the message being decoded in rb

/** Where the fds that travel with messages come from (a socket Connection). */
export interface FdSource {
  /** The next `n` fds received; the caller owns them. */
  take(n: number): number[];
  close(fd: number): void;
}

let handleCtx: RebuildContext | null = null; // for the handles of the message being decoded
const NO_FDS: RebuildContext = { fd: () => { throw corrupt(); } };
const NO_CLAIMS = new Set<number>(); // never added to: NO_FDS claims nothing
const NONE: number[] = [];

/** Decodes one whole message (the view exactly covers it). Messages with fds take them from `fdSource`. */
export function decode(bytes: Uint8Array, fdSource?: FdSource): unknown {
  const b = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) as Bytes;
  return decodeRange(b, 0, b.length, fdSource);
}

/**
 * Decodes the message in bytes[start, end) without a view of it: a queue decodes straight out of
 * its shared ring (a new view per message costs as much as decoding a small one).
 */
export function decodeRange(bytes: Buffer, start: number, end: number, fdSource?: FdSource): unknown {
  const format = end <= start ? -1 : bytes[start];
  if (format === V8_FORMAT) return viaV8Decode(bytes.subarray(start, end), 0);
  let body = start + 1;
  let fds: number[] = NONE;
  if (format === COMPACT_FDS || format === V8_HANDLES) {
    if (end - start < 5) throw corrupt();
    const k = (bytes[start + 1]! | (bytes[start + 2]! << 8) | (bytes[start + 3]! << 16)) + bytes[start + 4]! * 0x1000000;
    if (k > 0) {
      if (!fdSource) throw new TypeError(`codec: a message carries ${k} file descriptor(s), which this channel cannot deliver`);
      fds = fdSource.take(k);
    }
    body = start + 5;
  } else if (format !== COMPACT_V1) {
    throw new Error(`codec: not a message (format byte ${format})`);
  }
  // Most messages carry no fds: they share one context and allocate nothing here.
  const claimed = fds.length === 0 ? NO_CLAIMS : new Set<number>();
  const ctx: RebuildContext = fds.length === 0 ? NO_FDS : {
    fd(i: number): number {
      if (!(i >= 0 && i < fds.length) || claimed.has(i)) throw corrupt();
      claimed.add(i);
      return fds[i]!;
    },
  };
  const outerBuf = rb, outerPos = rp, outerEnd = rend, outerCtx = handleCtx;
  try {
    if (format === V8_HANDLES) return rebuildHandles(viaV8Decode(bytes.subarray(start, end), 5), ctx);
    rb = bytes as Bytes;
    rp = body;
    rend = end;
    handleCtx = ctx;
    const v = readValue();
    if (rp !== end) throw corrupt();
    return v;
  } finally {
    rb = outerBuf;
    rp = outerPos;
    rend = outerEnd;
    handleCtx = outerCtx;
    // fds that no handle took (a bad message, or a rebuild that failed) must not leak.
    for (let i = 0; i < fds.length; i++) if (!claimed.has(i)) fdSource!.close(fds[i]!);
  }
}

function viaV8Decode(bytes: Uint8Array, start: number): unknown {
  // v8.deserialize returns typed arrays that are views into its input: copy first, so they neither
  // alias the caller's (probably reused) receive buffer nor expose a shared Buffer pool via .buffer.
  const own = Buffer.allocUnsafeSlow(bytes.length - start);
  own.set(bytes.subarray(start));
  return v8.deserialize(own);
}

/** rb[p, p + n) into b. A view and set() beat Buffer#copy (argument checks) and a JS loop, also for small n (measured). */
function copyOut(b: Buffer, p: number, n: number): void {
  b.set(new Uint8Array(rb.buffer, rb.byteOffset + p, n));
}

function corrupt(): Error {
  return new Error('codec: corrupt message');
}

function readU32(): number {
  return readI32() >>> 0;
}

function readI32(): number {
  const p = take(4);
  return rb[p] | (rb[p + 1] << 8) | (rb[p + 2] << 16) | (rb[p + 3] << 24);
}

/** Advances past n payload bytes and returns where they start. */
function take(n: number): number {
  const p = rp;
  if (!(p + n <= rend)) throw corrupt(); // also catches NaN from reading past the end
  rp = p + n;
  return p;
}

function readValue(): unknown {
  const t = rb[rp++];
  if (t >= T_SMALL) return t & 0x7f;
  switch (t) {
    case T_HANDLE: {
      const type = readString(rb[rp++]!);
      const state = readValue();
      if (!handleCtx) throw corrupt();
      return reducerNamed(type).rebuild(state, handleCtx);
    }
    case T_UNDEFINED: return undefined;
    case T_NULL: return null;
    case T_FALSE: return false;
    case T_TRUE: return true;
    case T_I32: return readI32();
    case T_F64: return rb.readDoubleLE(take(8));
    case T_ARRAY: {
      const n = readU32();
      if (n > rend - rp) throw corrupt(); // every element takes a byte: no absurd preallocation
      // Preallocating (holey, invisibly so) is several times faster than growing by push.
      const a = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        // Numbers inline: going through readValue would box every double on the way.
        const et = rb[rp];
        if (et >= T_SMALL) { a[i] = et & 0x7f; rp++; }
        else if (et === T_F64) { rp++; a[i] = rb.readDoubleLE(take(8)); }
        else if (et === T_I32) { rp++; a[i] = readI32(); }
        else a[i] = readValue();
      }
      return a;
    }
    case T_NUMBERS: {
      const n = readU32();
      const p = take(8 * n);
      const dv = new DataView(rb.buffer, rb.byteOffset + p, 8 * n); // TurboFan reads these like a typed array
      const a = new Array<number>(n);
      for (let i = 0; i < n; i++) a[i] = dv.getFloat64(8 * i, true);
      return a;
    }
    case T_INTS: {
      const n = readU32();
      const p = take(4 * n);
      const dv = new DataView(rb.buffer, rb.byteOffset + p, 4 * n);
      const a = new Array<number>(n);
      for (let i = 0; i < n; i++) a[i] = dv.getInt32(4 * i, true);
      return a;
    }
    case T_OBJECT: {
      const o: Record<string, unknown> = {};
      while (rb[rp] !== T_END) {
        if (rp >= rend) throw corrupt();
        const kt = rb[rp++];
        const k = kt === T_ASCII8 ? readKey() : readString(kt);
        const v = readValue();
        // Assigning would call the __proto__ setter; structured clone creates an own property.
        if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
        else o[k] = v;
      }
      rp++;
      return o;
    }
    case T_BUFFER: {
      const n = readU32();
      const p = take(n);
      const b = Buffer.allocUnsafeSlow(n);
      copyOut(b, p, n);
      return b;
    }
    case T_TYPED: {
      const C = TYPED[rb[rp++]];
      const n = readU32();
      const p = take(n);
      if (C === undefined || n % C.BYTES_PER_ELEMENT !== 0) throw corrupt();
      const b = Buffer.allocUnsafeSlow(n); // an exact, unshared, 8-aligned ArrayBuffer
      copyOut(b, p, n);
      return new C(b.buffer, 0, n / C.BYTES_PER_ELEMENT);
    }
    default:
      return readString(t);
  }
}

// Keys repeat from message to message. Handing V8 the same string again spares a fresh string per key
// and, more importantly, re-internalizing it on every property store (measured ~3x faster objects).
const KEY_CACHE_SLOTS = 1024;
const MAX_CACHED_KEY = 32;
const keyCache: string[] = new Array<string>(KEY_CACHE_SLOTS).fill('');

function readKey(): string {
  const n = rb[rp];
  if (n > MAX_CACHED_KEY) return readString(T_ASCII8);
  const p = rp + 1;
  take(1 + n);
  let h = n;
  for (let i = p; i < p + n; i++) h = (Math.imul(h, 31) + rb[i]) | 0;
  const slot = h & (KEY_CACHE_SLOTS - 1);
  const cached = keyCache[slot];
  if (cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === rb[p + i]) i++;
    if (i === n) return cached;
  }
  return (keyCache[slot] = asciiString(p, n));
}

function asciiString(p: number, n: number): string {
  if (n > 4) return rb.latin1Slice(p, p + n);
  let s = '';
  for (let i = p; i < p + n; i++) s += String.fromCharCode(rb[i]);
  return s;
}

function readString(t: number): string {
  switch (t) {
    case T_ASCII8: { const n = rb[rp++]; return asciiString(take(n), n); }
    case T_ASCII32: { const n = readU32(); const p = take(n); return rb.latin1Slice(p, p + n); }
    case T_UTF8_8: { const n = rb[rp++]; const p = take(n); return rb.utf8Slice(p, p + n); }
    case T_UTF8_32: { const n = readU32(); const p = take(n); return rb.utf8Slice(p, p + n); }
    case T_UTF16: { const n = readU32(); const p = take(2 * n); return rb.ucs2Slice(p, p + 2 * n); }
    default: throw corrupt();
  }
}

// ---- explaining refusals --------------------------------------------------------------------------

/**
 * v8.serialize refused `root`: find the offending value the way v8 met it (same traversal order, each
 * object once) and name it by path. Returns the original error when nothing can be pinned down (a
 * throwing getter, a stack overflow...), so non-clone errors pass through unchanged.
 */
function explain(root: unknown, label: string | undefined, cause: unknown): unknown {
  let found: { path: string; what: string } | null = null;
  try {
    found = findUncloneable(root);
  } catch {
    // the walk re-runs getters and recursion; if that fails, the original error is the better report
  }
  if (found === null) return cause;
  return new TypeError(
    `${label ? `${label}: ` : ''}cannot send value at ${found.path} (${found.what}): ` +
      'messages must be structured-clonable (see v8.serialize)',
    { cause },
  );
}

type HostHook = { _writeHostObject(o: object): void };

/** Native handles (objects with embedder fields) reach `_writeHostObject`; JS cannot tell them apart otherwise. */
function hostObjects(root: unknown): Set<object> {
  const hosts = new Set<object>();
  const probe = new v8.DefaultSerializer();
  const base = (probe as unknown as HostHook)._writeHostObject.bind(probe);
  (probe as unknown as HostHook)._writeHostObject = (o: object) => {
    if (ArrayBuffer.isView(o)) return base(o);
    hosts.add(o);
    probe.writeUint32(0);
  };
  try {
    probe.writeHeader();
    probe.writeValue(root);
  } catch {
    // stops at the first non-host problem; the hosts met before it are all v8 would have met
  }
  return hosts;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
const INDEX = /^(?:0|[1-9]\d*)$/;

function findUncloneable(root: unknown): { path: string; what: string } | null {
  const hosts = hostObjects(root);
  const seen = new Set<object>();
  const path: string[] = ['msg'];
  let suspect: { path: string; what: string } | null = null;

  const child = (segment: string, v: unknown): string | null => {
    path.push(segment);
    const what = walk(v);
    if (what === null) path.pop();
    return what;
  };

  const walk = (v: unknown): string | null => {
    if (typeof v === 'function') return 'a function';
    if (typeof v === 'symbol') return 'a symbol';
    if (typeof v !== 'object' || v === null || seen.has(v)) return null;
    seen.add(v);
    if (types.isProxy(v)) return 'a Proxy';
    if (hosts.has(v)) return `a native ${nameOf(v)} handle`;
    if (isNeverCloneable(v)) return describe(v);
    if (types.isMap(v)) {
      let i = 0;
      for (const [k, x] of v as Map<unknown, unknown>) {
        const what = child(`.keys()[${i}]`, k) ?? child(mapValueSegment(k, i), x);
        if (what !== null) return what;
        i++;
      }
      return null;
    }
    if (types.isSet(v)) {
      let i = 0;
      for (const x of v as Set<unknown>) {
        const what = child(`.values()[${i++}]`, x);
        if (what !== null) return what;
      }
      return null;
    }
    if (types.isNativeError(v)) {
      return Object.hasOwn(v, 'cause') ? child('.cause', (v as Error).cause) : null;
    }
    if (types.isDate(v) || types.isRegExp(v) || types.isBoxedPrimitive(v) ||
        types.isAnyArrayBuffer(v) || ArrayBuffer.isView(v)) {
      // leaves for v8 (their own properties are not sent), so asking v8 about them alone is exact
      try { v8.serialize(v); return null; } catch (e) { return `${describe(v)}: ${(e as Error).message}`; }
    }
    for (const k of Object.keys(v)) {
      const seg = INDEX.test(k) ? `[${k}]` : IDENT.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
      const what = child(seg, (v as Record<string, unknown>)[k]);
      if (what !== null) return what;
    }
    // Some exotic built-in nobody listed (an iterator, an Intl object...)? Its failure could also come
    // from a cycle back to an ancestor, so it is only reported if nothing definite turns up.
    if (suspect === null && !Array.isArray(v) && Object.prototype.toString.call(v) !== '[object Object]') {
      try { v8.serialize(v); } catch { suspect = { path: path.join(''), what: describe(v) }; }
    }
    return null;
  };

  const what = walk(root);
  return what === null ? suspect : { path: path.join(''), what };
}

function isNeverCloneable(v: object): boolean {
  return types.isPromise(v) || types.isWeakMap(v) || types.isWeakSet(v) || types.isGeneratorObject(v) ||
    types.isArgumentsObject(v) || types.isModuleNamespaceObject(v) || types.isMapIterator(v) ||
    types.isSetIterator(v) || types.isSharedArrayBuffer(v) || types.isExternal(v) ||
    v instanceof WeakRef || v instanceof FinalizationRegistry;
}

function mapValueSegment(key: unknown, i: number): string {
  switch (typeof key) {
    case 'string': return `.get(${JSON.stringify(key)})`;
    case 'number': case 'boolean': case 'undefined': return `.get(${Object.is(key, -0) ? '-0' : String(key)})`;
    case 'bigint': return `.get(${key}n)`;
    default: return key === null ? '.get(null)' : `.values()[${i}]`;
  }
}

function describe(v: object): string {
  const name = nameOf(v);
  return `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}`; // 'a Uint8Array'
}

function nameOf(v: object): string {
  let name = Object.prototype.toString.call(v).slice(8, -1);
  if (name === 'Object') {
    try {
      const ctor = (v as { constructor?: unknown }).constructor;
      if (typeof ctor === 'function' && ctor.name) name = ctor.name;
    } catch {
      // a throwing `constructor` getter: keep the generic name
    }
  }
  return name;
}
