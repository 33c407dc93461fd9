// The message codec of multiproc: every value sent through a Connection, queue or pool becomes bytes here.
// Semantics are exactly v8.deserialize(v8.serialize(x)); common values take a compact path that is much faster.
//
// Format. Byte 0 says which encoding the rest of the message uses:
//   0xFF        the whole message is v8.serialize output, unmodified (0xFF is v8's own header byte).
//               Used as soon as anything the compact form does not cover appears anywhere in the value.
//   0x01        compact, version 1: exactly one value follows.
//   all others  reserved (0x02..0xFE for future compact versions); decode rejects them.
// Compact value: a tag byte, then its payload. u8/u32/i32 are little-endian; f64 is in host byte order
// (messages never leave the machine).
//   0x00 undefined   0x01 null   0x02 false   0x03 true
//   0x80|n           integer 0 <= n < 128
//   0x04 i32         other int32 values
//   0x05 f64         every other number (-0, NaN, ±Infinity and all doubles bit-exact)
//   0x06 u8 n  bytes   string, n ASCII bytes        0x07 u32 n bytes   same, long
//   0x08 u8 n  bytes   string, n bytes of UTF-8     0x09 u32 n bytes   same, long
//   0x0A u32 n units   string with lone surrogates, n UTF-16LE code units
//   0x0B u32 n values  dense Array with Array.prototype, no extra properties
//   0x0C (string value)* 0x0D   plain object (prototype Object.prototype), keys in enumeration order
//   0x0E u32 n bytes   Buffer (decodes to a Buffer on a fresh ArrayBuffer of exactly n bytes)
//   0x0F u8 kind u32 n bytes   typed array, kind = index in TYPED; decodes to a fresh, exact ArrayBuffer
// No object appears twice in a compact message: aliasing and cycles need v8's back-references.

import v8 from 'node:v8';
import { types } from 'node:util';

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

const T_UNDEFINED = 0x00, T_NULL = 0x01, T_FALSE = 0x02, T_TRUE = 0x03;
const T_I32 = 0x04, T_F64 = 0x05;
const T_ASCII8 = 0x06, T_ASCII32 = 0x07, T_UTF8_8 = 0x08, T_UTF8_32 = 0x09, T_UTF16 = 0x0a;
const T_ARRAY = 0x0b, T_OBJECT = 0x0c, T_END = 0x0d, T_BUFFER = 0x0e, T_TYPED = 0x0f;
const T_SMALL = 0x80;

// Node's serializer knows exactly these (plus DataView); the order is our wire `kind`, never reorder.
const TYPED = [
  Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
] as const;
type Typed = InstanceType<(typeof TYPED)[number]>;
const KIND = new Map<string, number>(TYPED.map((C, i) => [C.name, i]));
// %TypedArray%.prototype[@@toStringTag] reads the internal slot: the real element type, immune to
// prototype games, undefined for anything that is not a typed array. Node's serializer uses the same.
const typedArrayName = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!.get! as (this: unknown) => string | undefined;

const INITIAL_SCRATCH = 16 * 1024;
const KEEP_SCRATCH = 1024 * 1024; // a scratch that grew past this is dropped rather than kept forever
const MAX_DEPTH = 1000; // deeper values go to v8, whose stack limit and error are then the ones that apply
const SHORT_STRING = 16; // below this a JS loop beats a native call (measured)
const LINEAR_SEEN = 16; // identity checks scan an array up to this many objects, then use a Set

const FALLBACK = Symbol('use v8'); // thrown through the compact writer; never escapes this module

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

function alloc(n: number): Bytes {
  return Buffer.allocUnsafeSlow(n) as Bytes;
}

class Encoder {
  buf: Bytes;
  pos = 0;
  depth = 0;
  /** Result view of the last call, reused when the next message has the same length. */
  view: Buffer | null = null;
  usedV8 = false;
  private polluted = false;
  private seen: (object | undefined)[] = [];
  private nseen = 0;
  private seenSet: Set<object> | null = null;

  constructor(size: number) {
    this.buf = alloc(size);
  }

  run(value: unknown, label: string | undefined): Buffer {
    this.pos = 0;
    this.depth = 0;
    this.usedV8 = false;
    this.polluted = prototypePolluted();
    try {
      this.ensure(1);
      this.buf[this.pos++] = COMPACT_V1;
      this.value(value);
    } catch (e) {
      if (e !== FALLBACK) throw e;
      this.usedV8 = true;
      return viaV8(value, label);
    } finally {
      this.forget();
    }
    const n = this.pos;
    let view = this.view;
    if (view === null || view.length !== n) this.view = view = this.buf.subarray(0, n);
    return view;
  }

  /** Drops references to the caller's objects so they are not kept alive by the scratch encoder. */
  private forget(): void {
    const seen = this.seen;
    for (let i = 0; i < this.nseen; i++) seen[i] = undefined;
    this.nseen = 0;
    if (this.seenSet !== null) this.seenSet.clear();
    this.seenSet = null;
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const next = alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = null;
  }

  private u32(n: number): void {
    const b = this.buf, p = this.pos;
    b[p] = n; b[p + 1] = n >>> 8; b[p + 2] = n >>> 16; b[p + 3] = n >>> 24;
    this.pos = p + 4;
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
    const b = this.buf;
    let p = this.pos;
    if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
      if (v >= 0 && v < 128) { b[p] = T_SMALL | v; this.pos = p + 1; return; }
      b[p] = T_I32; b[p + 1] = v; b[p + 2] = v >> 8; b[p + 3] = v >> 16; b[p + 4] = v >> 24;
      this.pos = p + 5;
      return;
    }
    f64[0] = v;
    b[p++] = T_F64;
    for (let i = 0; i < 8; i++) b[p + i] = f64Bytes[i];
    this.pos = p + 8;
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
    if (!(s as WellFormed).isWellFormed()) {
      // UTF-8 cannot carry lone surrogates (they would become U+FFFD); UTF-16 carries anything.
      this.ensure(5 + 2 * n);
      this.buf[this.pos] = T_UTF16;
      this.pos++;
      this.u32(n);
      this.pos += this.buf.ucs2Write(s, this.pos, 2 * n);
      return;
    }
    const max = 3 * n;
    if (max <= 0xff) {
      this.ensure(2 + max);
      const p = this.pos;
      const len = this.buf.utf8Write(s, p + 2, max);
      this.buf[p] = len === n ? T_ASCII8 : T_UTF8_8;
      this.buf[p + 1] = len;
      this.pos = p + 2 + len;
      return;
    }
    this.ensure(5 + max);
    const p = this.pos;
    const len = this.buf.utf8Write(s, p + 5, max);
    this.buf[p] = len === n ? T_ASCII32 : T_UTF8_32; // every byte ASCII iff bytes == UTF-16 units
    this.pos = p + 1;
    this.u32(len);
    this.pos += len;
  }

  private object(o: object): void {
    if (types.isProxy(o)) throw FALLBACK; // before anything that could run a trap
    this.visit(o);
    if (++this.depth > MAX_DEPTH) throw FALLBACK;
    if (Array.isArray(o)) {
      if (Object.getPrototypeOf(o) !== Array.prototype) throw FALLBACK;
      this.array(o);
    } else {
      const proto = Object.getPrototypeOf(o);
      if (proto === Object.prototype) this.plain(o);
      else this.typed(o, proto);
    }
    this.depth--;
  }

  /** Structured clone keeps identity: an object met twice (shared or cyclic) needs v8's back-references. */
  private visit(o: object): void {
    const n = this.nseen;
    if (this.seenSet === null) {
      const seen = this.seen;
      for (let i = 0; i < n; i++) if (seen[i] === o) throw FALLBACK;
      if (n < LINEAR_SEEN) {
        seen[n] = o;
        this.nseen = n + 1;
        return;
      }
      this.seenSet = new Set(seen.slice(0, n) as object[]);
    }
    if (this.seenSet.has(o)) throw FALLBACK;
    this.seenSet.add(o);
  }

  private array(a: unknown[]): void {
    const n = a.length;
    if (n > 0) {
      // Keys come sorted, indices first: n keys ending with n-1 are exactly 0..n-1, so no holes,
      // no non-enumerable elements and no extra named properties. O(n), but nothing in JS is cheaper.
      const keys = Object.keys(a);
      if (keys.length !== n || keys[n - 1] !== String(n - 1)) throw FALLBACK;
    }
    this.ensure(5);
    this.buf[this.pos++] = T_ARRAY;
    this.u32(n);
    for (let i = 0; i < n; i++) this.value(a[i]);
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

  private typed(o: object, proto: object | null): void {
    const name = typedArrayName.call(o);
    if (name === undefined) throw FALLBACK;
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
    // 0 may mean detached, which Node's serializer rejects; too big for a u32 is v8's problem too.
    if (n === 0 || n > 0xffffffff) throw FALLBACK;
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
export function encodeScratch(value: unknown, label?: string): Buffer {
  if (busy) return new Encoder(256).run(value, label); // re-entered from a getter: private, owned result
  busy = true;
  try {
    if (shared.buf.length > KEEP_SCRATCH) shared = new Encoder(INITIAL_SCRATCH);
    return shared.run(value, label);
  } finally {
    busy = false;
  }
}

/** Same, but returns a fresh Buffer the caller owns. */
export function encode(value: unknown, label?: string): Buffer {
  if (busy) return new Encoder(256).run(value, label);
  busy = true;
  try {
    const enc = shared;
    const out = enc.run(value, label);
    if (enc.usedV8) return out; // already a fresh Buffer
    if (enc.buf.length > KEEP_SCRATCH) {
      shared = new Encoder(INITIAL_SCRATCH); // hand the big scratch over instead of copying it
      return out;
    }
    const copy = Buffer.allocUnsafe(out.length);
    out.copy(copy);
    return copy;
  } finally {
    busy = false;
  }
}

function viaV8(value: unknown, label: string | undefined): Buffer {
  try {
    return v8.serialize(value);
  } catch (err) {
    throw explain(value, label, err);
  }
}

// ---- decoding -------------------------------------------------------------------------------------

// Module state instead of a per-call reader object; decode saves and restores it, so a re-entrant call
// (only possible through setters planted on built-in prototypes) cannot corrupt an outer one.
let rb: Bytes = alloc(0);
let rp = 0;

/** Decodes one whole message (the view exactly covers it). */
export function decode(bytes: Uint8Array): unknown {
  const format = bytes.length === 0 ? -1 : bytes[0];
  if (format === V8_FORMAT) {
    // v8.deserialize returns Uint8Arrays that are views into its input; copying first keeps them off
    // the caller's (probably reused) receive buffer.
    return v8.deserialize(Buffer.from(bytes));
  }
  if (format !== COMPACT_V1) throw new Error(`codec: not a message (format byte ${format})`);
  const outerBuf = rb, outerPos = rp;
  rb = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) as Bytes;
  rp = 1;
  try {
    const v = readValue();
    if (rp !== rb.length) throw corrupt();
    return v;
  } finally {
    rb = outerBuf;
    rp = outerPos;
  }
}

function corrupt(): Error {
  return new Error('codec: corrupt message');
}

function readU32(): number {
  const p = rp;
  rp = p + 4;
  return (rb[p] | (rb[p + 1] << 8) | (rb[p + 2] << 16) | (rb[p + 3] << 24)) >>> 0;
}

/** Advances past n payload bytes and returns where they start. */
function take(n: number): number {
  const p = rp;
  if (p + n > rb.length) throw corrupt();
  rp = p + n;
  return p;
}

function readValue(): unknown {
  const t = rb[rp++];
  if (t >= T_SMALL) return t & 0x7f;
  switch (t) {
    case T_UNDEFINED: return undefined;
    case T_NULL: return null;
    case T_FALSE: return false;
    case T_TRUE: return true;
    case T_I32: {
      const p = rp;
      rp = p + 4;
      return rb[p] | (rb[p + 1] << 8) | (rb[p + 2] << 16) | (rb[p + 3] << 24);
    }
    case T_F64: {
      const p = take(8);
      for (let i = 0; i < 8; i++) f64Bytes[i] = rb[p + i];
      return f64[0];
    }
    case T_ARRAY: {
      const n = readU32();
      const a: unknown[] = [];
      for (let i = 0; i < n; i++) a.push(readValue());
      return a;
    }
    case T_OBJECT: {
      const o: Record<string, unknown> = {};
      while (rb[rp] !== T_END) {
        if (rp >= rb.length) throw corrupt();
        const k = readString(rb[rp++]);
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
      rb.copy(b, 0, p, p + n);
      return b;
    }
    case T_TYPED: {
      const C = TYPED[rb[rp++]];
      const n = readU32();
      const p = take(n);
      if (C === undefined || n % C.BYTES_PER_ELEMENT !== 0) throw corrupt();
      const b = Buffer.allocUnsafeSlow(n); // an exact, unshared, 8-aligned ArrayBuffer
      rb.copy(b, 0, p, p + n);
      return new C(b.buffer, 0, n / C.BYTES_PER_ELEMENT);
    }
    default:
      return readString(t);
  }
}

function readString(t: number): string {
  switch (t) {
    case T_ASCII8: {
      const n = rb[rp++];
      const p = take(n);
      if (n <= 4) {
        let s = '';
        for (let i = p; i < p + n; i++) s += String.fromCharCode(rb[i]);
        return s;
      }
      return rb.latin1Slice(p, p + n);
    }
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
      try { v8.serialize(v); return null; } catch { return describe(v); }
    }
    const isArray = Array.isArray(v);
    for (const k of Object.keys(v)) {
      const seg = isArray && INDEX.test(k) ? `[${k}]` : IDENT.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
      const what = child(seg, (v as Record<string, unknown>)[k]);
      if (what !== null) return what;
    }
    // Some exotic built-in nobody listed (an iterator, an Intl object...)? Its failure could also come
    // from a cycle back to an ancestor, so it is only reported if nothing definite turns up.
    if (suspect === null && !isArray && Object.prototype.toString.call(v) !== '[object Object]') {
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
  return `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
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
