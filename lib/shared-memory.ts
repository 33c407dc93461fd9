// SharedMemory and ShareableList (API.md, Shared memory): Python's multiprocessing.shared_memory
// over named POSIX segments (shm_open), byte-compatible with CPython's, and tracked so they never leak.
//
// Lifetime: the process that creates a segment registers its name with its tracker (native/shm.cc),
// which unlinks it if the process ends without unlink(), however it ends (also on SIGKILL), as
// CPython's resource_tracker does. Processes that only attach do not register it.
import { randomBytes } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { inspect } from 'node:util';
import { endianness } from 'node:os';
import { native } from './native.js';
import { registerReducer } from './reduction.js';

export interface SharedMemoryOptions {
  /** The segment's name, without the leading '/' (as in Python). Generated when creating without one. */
  name?: string;
  /** Create a new segment (refused if the name exists); otherwise attach to an existing one. */
  create?: boolean;
  /** Bytes; required (> 0) when creating, ignored when attaching (the segment's size is used). */
  size?: number;
}

const NAME_PREFIX = 'mp_';
// The tracker keeps names up to 249 bytes with the slash (native/shm.cc); NAME_MAX is 255.
const MAX_NAME = 248;

// The fd goes with the object when it is dropped without close() (the mapping goes with its buffer).
const closer = new FinalizationRegistry<number>((fd) => {
  try {
    native.closeFd(fd);
  } catch {
    // already gone with the process's teardown
  }
});

const kAdopt = Symbol('adopt');

function checkName(name: unknown): string {
  if (typeof name !== 'string') throw new TypeError(`SharedMemory: name must be a string, got ${typeof name}`);
  // A leading slash is POSIX's spelling; Python's names have none.
  const n = name.startsWith('/') ? name.slice(1) : name;
  if (n.length === 0 || n.includes('/') || n.includes('\0') || n.includes('\n')) {
    throw new TypeError(`SharedMemory: ${JSON.stringify(name)} is not a valid name: use a non-empty name without '/' (as in Python, without the leading slash)`);
  }
  if (Buffer.byteLength(n) > MAX_NAME) throw new RangeError(`SharedMemory: the name ${JSON.stringify(n.slice(0, 20))}… is ${Buffer.byteLength(n)} bytes; at most ${MAX_NAME} are allowed`);
  return n;
}

function openError(name: string, create: boolean, e: unknown): Error {
  const code = (e as { code?: string }).code;
  let message: string;
  if (code === 'EEXIST') message = `SharedMemory: a segment named '${name}' already exists; attach to it with new SharedMemory({ name: '${name}' }), or choose another name`;
  else if (code === 'ENOENT') message = `SharedMemory: no segment named '${name}' exists (never created, or already unlinked); create it with { name: '${name}', create: true, size }`;
  else if (code === 'EACCES') message = `SharedMemory: permission denied for the segment '${name}' (it belongs to another user)`;
  else message = `SharedMemory: cannot ${create ? 'create' : 'open'} the segment '${name}': ${(e as Error).message}`;
  const err = new Error(message, { cause: e }) as Error & { code?: string; errno?: number };
  if (code) err.code = code;
  if ((e as { errno?: number }).errno !== undefined) err.errno = (e as { errno: number }).errno;
  return err;
}

/**
 * A named block of shared memory (Python's `multiprocessing.shared_memory.SharedMemory`): `buf`
 * is a Buffer over the mapping itself. Any process — also a Python one — attaches by `name`.
 * close() drops this process's mapping; unlink() removes the name (call it once, when done).
 */
export class SharedMemory {
  readonly #name: string;
  readonly #size: number;
  #fd: number;
  #ab: ArrayBuffer | null;
  #buf: Buffer | null;

  constructor(options?: SharedMemoryOptions | string);
  /** @internal A segment whose fd arrived from another process. */
  constructor(adopt: typeof kAdopt, name: string, fd: number);
  constructor(a: SharedMemoryOptions | string | typeof kAdopt = {}, adoptName?: string, adoptFd?: number) {
    if (a === kAdopt) {
      this.#name = adoptName!;
      this.#fd = adoptFd!;
      try {
        this.#size = native.shmSize(this.#fd);
      } catch (e) {
        native.closeFd(this.#fd);
        throw e;
      }
    } else {
      const options = typeof a === 'string' ? { name: a } : a;
      if (options === null || typeof options !== 'object') throw new TypeError(`SharedMemory: expected options like { name, create, size }, got ${options === null ? 'null' : typeof options}`);
      const create = options.create === true;
      const size = options.size ?? 0;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new RangeError(`SharedMemory: size must be an integer >= 0, got ${String(size)}`);
      if (create && size === 0) throw new RangeError("SharedMemory: creating a segment needs a size > 0 (in bytes), as in Python");
      if (create && size > bufferConstants.MAX_LENGTH) throw new RangeError(`SharedMemory: ${size} bytes is more than a Buffer can cover (${bufferConstants.MAX_LENGTH})`);
      if (options.name === undefined || options.name === null) {
        if (!create) throw new TypeError('SharedMemory: give the name of an existing segment, or create: true (with a size) for a new one');
        [this.#name, this.#fd] = createUnique(size);
      } else {
        this.#name = checkName(options.name);
        try {
          this.#fd = native.shmOpen('/' + this.#name, create, size);
        } catch (e) {
          throw openError(this.#name, create, e);
        }
      }
      if (create) {
        this.#size = size;
        // From here on the name is this process's to clean up, should it die.
        try {
          native.trackShm('/' + this.#name, true);
        } catch (e) {
          native.closeFd(this.#fd);
          native.shmUnlink('/' + this.#name);
          throw e;
        }
      } else {
        try {
          this.#size = native.shmSize(this.#fd);
        } catch (e) {
          native.closeFd(this.#fd);
          throw e;
        }
      }
    }
    try {
      if (this.#size > bufferConstants.MAX_LENGTH) throw new RangeError(`SharedMemory '${this.#name}': its ${this.#size} bytes are more than a Buffer can cover (${bufferConstants.MAX_LENGTH})`);
      this.#ab = native.shmMap(this.#fd, this.#size);
    } catch (e) {
      native.closeFd(this.#fd);
      if (a !== kAdopt && (a as SharedMemoryOptions).create === true) this.#forget(true);
      throw e;
    }
    this.#buf = Buffer.from(this.#ab, 0, this.#size);
    closer.register(this, this.#fd, this);
  }

  /** The name other processes attach by (no leading slash, as in Python). */
  get name(): string {
    return this.#name;
  }

  /** Bytes. */
  get size(): number {
    return this.#size;
  }

  /** A Buffer over the shared bytes themselves (no copy). Throws once closed. */
  get buf(): Buffer {
    if (this.#buf === null) throw new Error(`SharedMemory '${this.#name}' is closed: its buffer is gone (attach again with new SharedMemory({ name: '${this.#name}' }))`);
    return this.#buf;
  }

  get closed(): boolean {
    return this.#buf === null;
  }

  /**
   * Drops this process's access: the mapping goes (Buffers taken from `buf` read as empty from
   * now on) and the fd is closed. The segment itself lives on until unlinked. Idempotent.
   */
  close(): void {
    if (this.#ab === null) return;
    native.shmUnmap(this.#ab);
    this.#ab = null;
    this.#buf = null;
    closer.unregister(this);
    native.closeFd(this.#fd);
    this.#fd = -1;
  }

  /**
   * Removes the name: nobody can attach any more, and the memory is freed once every process
   * has closed it (Python's `unlink`). Call it once, in one process. Works after close() too.
   */
  unlink(): void {
    try {
      native.shmUnlink('/' + this.#name);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
      // Gone already (unlinked elsewhere): nothing left for our tracker either.
      this.#forget(false);
      throw Object.assign(new Error(`SharedMemory '${this.#name}': already unlinked (unlink() is called once, by one process)`, { cause: e }), { code: 'ENOENT' });
    }
    this.#forget(false);
  }

  #forget(unlinkNow: boolean): void {
    if (unlinkNow) {
      try {
        native.shmUnlink('/' + this.#name);
      } catch {
        // not there: nothing to undo
      }
    }
    // Any thread of this process may have registered it (the tracker is per process).
    if (native.trackerPid() !== 0) native.trackShm('/' + this.#name, false);
  }

  /** @internal For the reducer: the fd while open. */
  get fd(): number {
    return this.#fd;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `SharedMemory('${this.#name}', size=${this.#size}${this.closed ? ', closed' : ''})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** Creates a segment under a fresh random name: [name, fd]. */
function createUnique(size: number): [string, number] {
  for (;;) {
    const name = NAME_PREFIX + randomBytes(6).toString('hex');
    try {
      return [name, native.shmOpen('/' + name, true, size)];
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw openError(name, true, e);
    }
  }
}

// A SharedMemory travels by fd where the channel carries fds: the receiver then holds the memory
// even if the name is unlinked meanwhile, or its creator dies and the tracker unlinks it. Where
// the channel cannot carry fds it travels by name, as in Python, and the receiver attaches.
registerReducer<SharedMemory, { name: string; fd: number }>({
  type: 'SharedMemory',
  cls: SharedMemory,
  reduce: (shm, ctx) => {
    if (shm.closed) throw new Error(`${shm} is closed and cannot be sent; send it before closing, or send its name`);
    let fd = -1;
    try {
      fd = ctx.addFd(shm.fd);
    } catch {
      // a channel without fds: by name
    }
    return { name: shm.name, fd };
  },
  rebuild: (s, ctx) => {
    if (s.fd >= 0) return new SharedMemory(kAdopt, s.name, ctx.fd(s.fd));
    try {
      return new SharedMemory({ name: s.name });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
      throw new Error(`SharedMemory '${s.name}' arrived by name but no longer exists: it was unlinked (or its creator ended) before this process attached`, { cause: e });
    }
  },
});

// ---- ShareableList ----
//
// CPython's layout, byte for byte, so that either side can attach to the other's list:
//   int64 N | int64 offsets[N + 1] (of each item's slot in the data area; offsets[0] = 0)
//   | data area (8 bytes per number/bool/null; strings and bytes in multiples of 8, NUL-padded)
//   | char formats[N][8] (each item's struct format, NUL-padded) | int8 codes[N]
// Formats: 'q' int64, 'd' double, 'xxxxxxx?' bool (in the slot's last byte), 'xxxxxx?x' None,
// '<n>s' n bytes. Codes: 0 the format's value, 1 str (UTF-8), 2 bytes, 3 None. Integers and
// numbers are native-endian, as struct writes them. A BigInt is stored as '=q' ('=Q' past
// int64): Python reads it as an int, and we read it back as a BigInt; a plain 'q' (a safe
// integer of ours, or any Python int) reads as a number when it is a safe integer, else a BigInt.

/** What a ShareableList holds. */
export type ShareableItem = number | bigint | boolean | string | Buffer | Uint8Array | null;

const LE = endianness() === 'LE';
const ALIGN = 8;
const CODE_VALUE = 0, CODE_STR = 1, CODE_BYTES = 2, CODE_NONE = 3;
const F_BOOL = 'xxxxxxx?';
const F_NONE = 'xxxxxx?x';
// A format is at most 8 characters: '9999999s' is the longest string slot.
const MAX_SLOT = 9999999;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

interface Encoded {
  format: string;
  code: number;
  /** The bytes of a string/bytes item, unpadded. */
  bytes?: Uint8Array;
  value?: number | bigint | boolean;
}

function encodeItem(v: unknown, where: () => string): Encoded {
  switch (typeof v) {
    case 'number':
      // A safe integer is Python's int; anything else keeps its double (and -0 its sign).
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? { format: 'q', code: CODE_VALUE, value: v } : { format: 'd', code: CODE_VALUE, value: v };
    case 'bigint':
      if (v >= INT64_MIN && v <= INT64_MAX) return { format: '=q', code: CODE_VALUE, value: v };
      if (v > INT64_MAX && v <= UINT64_MAX) return { format: '=Q', code: CODE_VALUE, value: v };
      throw new RangeError(`${where()}: ${v}n does not fit in 64 bits`);
    case 'boolean':
      return { format: F_BOOL, code: CODE_VALUE, value: v };
    case 'string':
      return { format: 's', code: CODE_STR, bytes: Buffer.from(v, 'utf8') };
    case 'object':
      if (v === null) return { format: F_NONE, code: CODE_NONE };
      if (v instanceof Uint8Array) return { format: 's', code: CODE_BYTES, bytes: v };
  }
  throw new TypeError(`${where()}: a ShareableList holds numbers, BigInts, booleans, strings, Buffers/Uint8Arrays and null, not ${v === undefined ? 'undefined (use null)' : typeof v === 'object' ? withArticle((v as object).constructor?.name ?? 'object') : typeof v}`);
}

function withArticle(name: string): string {
  return `${/^[aeiou]/i.test(name) ? 'an' : 'a'} ${name}`;
}

/** Slot bytes of a new item, as Python sizes them: 8, or a multiple of 8 with room for a NUL. */
function slotOf(e: Encoded, where: () => string): number {
  if (!e.bytes) return ALIGN;
  const n = ALIGN * (Math.floor(e.bytes.length / ALIGN) + 1);
  if (n > MAX_SLOT) throw new RangeError(`${where()}: ${e.bytes.length} bytes is more than an item of a ShareableList holds (${MAX_SLOT - ALIGN})`);
  return n;
}

/** Reads `n` bytes' worth of int64 at `p`. */
function readI64(b: Buffer, p: number): bigint {
  return LE ? b.readBigInt64LE(p) : b.readBigInt64BE(p);
}

function same(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  // Python has one int: 1 and 1n are the same item.
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) return a == b;
  return a === b;
}

/**
 * A fixed-length list in a SharedMemory (Python's `ShareableList`): numbers, BigInts, booleans,
 * strings, Buffers and null. Items keep the slot they got at creation: a longer string or
 * Buffer later throws, as in Python. Pass `null` and `{ name }` to attach to an existing one.
 */
export class ShareableList {
  readonly shm: SharedMemory;
  readonly #length: number;
  /** Offsets of the slots in the data area; [length] is the data area's size. */
  readonly #offsets: number[];
  readonly #data: number;

  constructor(values?: Iterable<ShareableItem> | null, options?: { name?: string });
  /** @internal */
  constructor(adopt: typeof kAdopt, shm: SharedMemory);
  constructor(values?: Iterable<ShareableItem> | null | typeof kAdopt, options?: { name?: string } | SharedMemory) {
    let shm: SharedMemory;
    if (values === kAdopt) {
      shm = options as SharedMemory;
    } else {
      const name = (options as { name?: string } | undefined)?.name ?? undefined;
      if ((values === undefined || values === null) && name !== undefined) {
        shm = new SharedMemory({ name });
      } else {
        if (values !== undefined && values !== null && (typeof values === 'string' || typeof (values as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
          throw new TypeError('ShareableList: expected an iterable of items (or null with { name } to attach)');
        }
        const made = ShareableList.#create(values ? [...values] : [], name);
        this.shm = made.shm;
        this.#length = made.offsets.length - 1;
        this.#offsets = made.offsets;
        this.#data = (this.#length + 2) * 8;
        return;
      }
    }
    this.shm = shm;
    // Attaching: read the layout (what a corrupt or foreign segment cannot make us read past its end).
    const b = shm.buf;
    const bad = (why: string) => {
      shm.close();
      return new Error(`ShareableList: the segment '${shm.name}' does not hold a ShareableList (${why})`);
    };
    if (b.length < 16) throw bad('too small');
    const n = readI64(b, 0);
    if (n < 0n || (n + 2n) * 8n > BigInt(b.length)) throw bad(`a length of ${n}`);
    this.#length = Number(n);
    this.#data = (this.#length + 2) * 8;
    this.#offsets = [];
    for (let i = 0; i <= this.#length; i++) this.#offsets.push(Number(readI64(b, 8 + i * 8)));
    if (this.#offsets[0] !== 0 || this.#offsets.some((o, i) => i > 0 && o < this.#offsets[i - 1]!) || this.#data + this.#offsets[this.#length]! + 9 * this.#length > b.length) throw bad('its offsets do not fit');
  }

  static #create(items: unknown[], name: string | undefined): { shm: SharedMemory; offsets: number[] } {
    const n = items.length;
    const enc = items.map((v, i) => encodeItem(v, () => `ShareableList: item ${i}`));
    const offsets = [0];
    for (let i = 0; i < n; i++) offsets.push(offsets[i]! + slotOf(enc[i]!, () => `ShareableList: item ${i}`));
    const dataBytes = offsets[n]!;
    const size = 8 + 8 * (n + 1) + dataBytes + 8 * n + n;
    const shm = new SharedMemory({ name, create: true, size });
    try {
      const b = shm.buf;
      writeI64(b, 0, BigInt(n));
      for (let i = 0; i <= n; i++) writeI64(b, 8 + 8 * i, BigInt(offsets[i]!));
      const data = (n + 2) * 8;
      for (let i = 0; i < n; i++) {
        const e = enc[i]!;
        const slot = offsets[i + 1]! - offsets[i]!;
        if (e.bytes) e.format = `${slot}s`;
        writeItem(b, data + offsets[i]!, slot, e);
        writeMeta(b, data + dataBytes, n, i, e);
      }
    } catch (e) {
      shm.close();
      shm.unlink();
      throw e;
    }
    return { shm, offsets };
  }

  get length(): number {
    return this.#length;
  }

  /** Item `i`; a negative `i` counts from the end, as in Python. */
  get(i: number): ShareableItem {
    const k = this.#index(i, 'get');
    const b = this.shm.buf;
    const format = this.#format(b, k);
    const at = this.#data + this.#offsets[k]!;
    const code = b[this.#data + this.#offsets[this.#length]! + 8 * this.#length + k]!;
    if (code === CODE_NONE) return null;
    if (code === CODE_STR || code === CODE_BYTES) {
      const m = /^(\d+)s$/.exec(format);
      if (!m || Number(m[1]) > this.#offsets[k + 1]! - this.#offsets[k]!) throw this.#unreadable(k, format);
      let end = at + Number(m[1]);
      // Python strips trailing NULs on the way out: the slot is NUL-padded.
      while (end > at && b[end - 1] === 0) end--;
      return code === CODE_STR ? b.toString('utf8', at, end) : Buffer.from(b.subarray(at, end));
    }
    switch (format) {
      case 'q': {
        const v = readI64(b, at);
        return v >= -0x1fffffffffffffn && v <= 0x1fffffffffffffn ? Number(v) : v;
      }
      case '=q':
        return readI64(b, at);
      case '=Q':
        return LE ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
      case 'd':
        return LE ? b.readDoubleLE(at) : b.readDoubleBE(at);
      case F_BOOL:
        return b[at + 7] !== 0;
      case F_NONE:
        return null;
    }
    throw this.#unreadable(k, format);
  }

  /** Replaces item `i`; a string or Buffer must fit the slot the item got at creation. */
  set(i: number, value: ShareableItem): void {
    const k = this.#index(i, 'set');
    const where = () => `ShareableList.set(${i}, …)`;
    const e = encodeItem(value, where);
    const slot = this.#offsets[k + 1]! - this.#offsets[k]!;
    const b = this.shm.buf;
    if (e.bytes) {
      if (e.bytes.length > slot) throw new RangeError(`${where()}: the ${typeof value === 'string' ? 'string' : 'bytes'} takes ${e.bytes.length} bytes, but item ${k} has room for ${slot} (items keep the size they had at creation)`);
      const current = this.#format(b, k);
      e.format = current.endsWith('s') ? current : `${slot}s`;
    }
    const meta = this.#data + this.#offsets[this.#length]!;
    writeMeta(b, meta, this.#length, k, e);
    writeItem(b, this.#data + this.#offsets[k]!, slot, e);
  }

  /** Index of the first item equal to `value`; throws if there is none (Python's `index`). */
  index(value: ShareableItem): number {
    for (let i = 0; i < this.#length; i++) if (same(this.get(i), value)) return i;
    throw new RangeError(`ShareableList.index(): ${inspect(value)} is not in the list`);
  }

  /** How many items equal `value`. */
  count(value: ShareableItem): number {
    let c = 0;
    for (let i = 0; i < this.#length; i++) if (same(this.get(i), value)) c++;
    return c;
  }

  toArray(): ShareableItem[] {
    return Array.from({ length: this.#length }, (_, i) => this.get(i));
  }

  *[Symbol.iterator](): IterableIterator<ShareableItem> {
    for (let i = 0; i < this.#length; i++) yield this.get(i);
  }

  /** The struct format of all the items (Python's `format`). */
  get format(): string {
    const b = this.shm.buf;
    let f = '';
    for (let i = 0; i < this.#length; i++) f += this.#format(b, i);
    return f;
  }

  /** Closes this process's access (`shm.close()`). */
  close(): void {
    this.shm.close();
  }

  /** Removes the segment's name (`shm.unlink()`); call it once, when every process is done. */
  unlink(): void {
    this.shm.unlink();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #index(i: number, method: string): number {
    if (typeof i !== 'number' || !Number.isInteger(i)) throw new TypeError(`ShareableList.${method}(): the index must be an integer, got ${typeof i === 'string' ? JSON.stringify(i) : String(i)}`);
    const k = i < 0 ? i + this.#length : i;
    if (k < 0 || k >= this.#length) throw new RangeError(`ShareableList.${method}(${i}): index out of range for length ${this.#length}`);
    return k;
  }

  #format(b: Buffer, k: number): string {
    const p = this.#data + this.#offsets[this.#length]! + 8 * k;
    let end = p + 8;
    while (end > p && b[end - 1] === 0) end--;
    return b.toString('latin1', p, end);
  }

  #unreadable(k: number, format: string): Error {
    return new Error(`ShareableList '${this.shm.name}': item ${k} has the format ${JSON.stringify(format)}, which this library cannot read`);
  }

  toString(): string {
    const items = this.shm.closed ? '<closed>' : inspect(this.toArray(), { breakLength: Infinity });
    return `ShareableList(${items}, name='${this.shm.name}')`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

function writeI64(b: Buffer, p: number, v: bigint): void {
  if (LE) b.writeBigInt64LE(v, p);
  else b.writeBigInt64BE(v, p);
}

/** The item's format (8 bytes, NUL-padded) and back-transform code. */
function writeMeta(b: Buffer, meta: number, n: number, k: number, e: Encoded): void {
  const p = meta + 8 * k;
  b.fill(0, p, p + 8);
  b.write(e.format, p, 'latin1');
  b[meta + 8 * n + k] = e.code;
}

/** The item's value into its slot, as struct.pack_into writes it. */
function writeItem(b: Buffer, at: number, slot: number, e: Encoded): void {
  if (e.bytes) {
    b.set(e.bytes, at);
    b.fill(0, at + e.bytes.length, at + slot);
    return;
  }
  b.fill(0, at, at + 8);
  switch (e.format) {
    case 'q':
      writeI64(b, at, BigInt(e.value as number));
      break;
    case '=q':
      writeI64(b, at, e.value as bigint);
      break;
    case '=Q':
      if (LE) b.writeBigUInt64LE(e.value as bigint, at);
      else b.writeBigUInt64BE(e.value as bigint, at);
      break;
    case 'd':
      if (LE) b.writeDoubleLE(e.value as number, at);
      else b.writeDoubleBE(e.value as number, at);
      break;
    case F_BOOL:
      b[at + 7] = e.value ? 1 : 0;
      break;
    // F_NONE: all zeros
  }
}

// A ShareableList travels as its SharedMemory (by fd, or by name where fds cannot go).
registerReducer<ShareableList, { shm: SharedMemory }>({
  type: 'ShareableList',
  cls: ShareableList,
  reduce: (l) => ({ shm: l.shm }),
  rebuild: (s) => new ShareableList(kAdopt, s.shm),
});
