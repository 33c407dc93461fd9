// The typed contract of the native addon (native/) and the one place that loads it:
// a local build when present, else the prebuilt binary shipped for this platform.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One pipe or socket fd with Python's multiprocessing.connection framing. */
export interface NativeChannel {
  /** Frames and writes `length` bytes at `offset`; what the kernel refuses is copied and queued. Returns bytes still queued. */
  send(buf: ArrayBufferView, offset: number, length: number): number;
  /** Next whole message: a Buffer, `null` if none came within `timeoutMs` (-1: wait forever), `undefined` at EOF. */
  recv(timeoutMs: number, maxLength?: number): Buffer | null | undefined;
  /** Like recv, copying into `target` at byte `offset`: the size, or the message as a Buffer when it does not fit. */
  recvInto(target: ArrayBufferView, offset: number, timeoutMs: number): number | Buffer | null | undefined;
  /** True when a recv would not block (a whole message or EOF) within `timeoutMs`. */
  poll(timeoutMs: number): boolean;
  /** Whether the event loop should call `onReadable` when the fd becomes readable. */
  watch(on: boolean): void;
  /** Closes for the caller; queued output is still written before the fd closes. Idempotent. */
  close(): void;
  /** Bytes queued, not yet taken by the kernel. */
  pending(): number;
  fileno(): number;
  /** How long a blocking receive spins (µs) before it parks in the kernel. */
  setSpin(micros: number): void;
}

export interface NativeChannelConstructor {
  new (fd: number, readable: boolean, writable: boolean, maxMessageBytes: number, onReadable: () => void): NativeChannel;
}

export interface NativeAddon {
  Channel: NativeChannelConstructor;
  /** A socketpair (duplex) or a pipe as [read end, write end]; both close-on-exec. */
  pipe(duplex: boolean): [number, number];
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export const platformTag = `${process.platform}-${process.arch}`;

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.MULTIPROC_NATIVE,
    join(packageRoot, 'build', 'Release', 'multiproc.node'),
    join(packageRoot, 'prebuilds', platformTag, 'multiproc.node'),
  ].filter((p): p is string => !!p);
  for (const path of candidates) {
    if (existsSync(path)) return require(path) as NativeAddon;
  }
  throw new Error(
    `multiproc: no native binary for ${platformTag} (Node ${process.version}). ` +
      `This package ships prebuilt binaries in ${join(packageRoot, 'prebuilds')} for the platforms it was packed on. ` +
      `To build it from source: clone the multiproc repository, run \`npm ci && npm run build:native\` there ` +
      `(needs python3, make and a C++17 compiler), then point MULTIPROC_NATIVE at its build/Release/multiproc.node.`,
  );
}

export const native: NativeAddon = load();
