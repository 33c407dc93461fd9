// The typed contract of the native addon (native/) and the one place that loads it:
// a local build when present, else the prebuilt binary shipped for this platform.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One pipe or socket fd with Python's multiprocessing.connection framing. */
export interface NativeChannel {
  /**
   * Frames and writes `length` bytes at `offset`; what the kernel refuses is copied and queued.
   * `fds` (sockets only) travel with the frame by SCM_RIGHTS; the caller keeps its own. Returns bytes still queued.
   */
  send(buf: ArrayBufferView, offset: number, length: number, fds?: number[]): number;
  /**
   * Next whole message: a Buffer, `null` if none came within `timeoutMs` (-1: wait forever), `undefined` at EOF.
   * `first`: an async receive's first try, which (once async receives read ahead) looks only at what is buffered.
   */
  recv(timeoutMs: number, maxLength?: number, first?: boolean): Buffer | null | undefined;
  /** Like recv, copying into `target` at byte `offset`: the size, or the message as a Buffer when it does not fit. */
  recvInto(target: ArrayBufferView, offset: number, timeoutMs: number, first?: boolean): number | Buffer | null | undefined;
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
  /** The next `n` fds received with SCM_RIGHTS (in arrival order); the caller owns them. */
  takeFds(n: number): number[];
}

export interface NativeChannelConstructor {
  new (fd: number, readable: boolean, writable: boolean, maxMessageBytes: number, onReadable: () => void): NativeChannel;
}

/** Watches an fd on the event loop (never the thread pool). Close it before closing the fd. */
export interface NativeFdWatcher {
  /** Calls `onReady` while the fd is readable / writable (an fd error counts as both); keeps the loop alive. */
  start(readable: boolean, writable: boolean): void;
  /** Stops calling back and lets the loop end. */
  stop(): void;
  /** Stops for good and releases the watcher (not the fd). Idempotent. */
  close(): void;
}

export interface NativeFdWatcherConstructor {
  new (fd: number, onReady: (readable: boolean, writable: boolean) => void): NativeFdWatcher;
}

export type SocketFamily = 'AF_UNIX' | 'AF_INET' | 'AF_INET6';
/** A path (AF_UNIX; a leading NUL names a Linux abstract address) or [host, port]. */
export type SocketAddress = string | [string, number];

export interface NativeAddon {
  Channel: NativeChannelConstructor;
  FdWatcher: NativeFdWatcherConstructor;
  /**
   * A bound, listening, non-blocking, close-on-exec socket: [fd, its real address]. `host` is a path
   * for AF_UNIX; for TCP an IP, '' (every interface) or a name (resolved here, blocking).
   * Errors carry Node's code, errno and syscall.
   */
  listen(family: SocketFamily, host: string, port: number, backlog: number): [number, SocketAddress];
  /** A pending connection as [fd (blocking, close-on-exec; TCP_NODELAY for TCP), peer address], or null if none. */
  accept(fd: number): [number, SocketAddress] | null;
  /**
   * Starts connecting a new close-on-exec socket to an IP literal or a path: [fd, inProgress]. In
   * progress: wait for the fd to be writable, then call connectResult. EAGAIN (AF_UNIX backlog full): try again later.
   */
  connect(family: SocketFamily, host: string, port: number): [number, boolean];
  /** Throws the error of a connect that was in progress; else makes the fd blocking (and TCP_NODELAY when `tcp`). */
  connectResult(fd: number, tcp: boolean): void;
  /** Whether `fd` is readable (or has a connection to accept), or writable, within `timeoutMs` (0: now; -1: forever). Blocks. */
  fdPoll(fd: number, writable: boolean, timeoutMs: number): boolean;
  /** The first address of a host name (getaddrinfo, blocking: for …Sync calls). */
  resolve(family: SocketFamily, host: string): string;
  /** A socketpair (duplex) or a pipe as [read end, write end]; both close-on-exec. */
  pipe(duplex: boolean): [number, number];
  /** sched_yield(): a busy-poll that has waited a while lets a process queued on its CPU run. */
  yieldCpu(): void;
  /** The CPU this thread runs on now (-1 if unknown). */
  getcpu(): number;
  /** A non-blocking eventfd (close it with closeFd). */
  eventfd(): number;
  eventfdSignal(fd: number): void;
  /** Resets its count; whether it had been signalled. */
  eventfdDrain(fd: number): boolean;
  /**
   * A child's exit status without reaping it (libuv reaps): null while it runs, n for exit(n),
   * -signal for a death by signal, undefined if it is not (or no longer) a child to wait for.
   */
  exitStatus(pid: number, block: boolean): number | null | undefined;
  /** Arms (or with 0 disarms) the signal sent when the parent dies; false if the parent is no longer `expectedParentPid`. */
  setParentDeathSignal(signal: number, expectedParentPid: number): boolean;
  setCloexec(fd: number, on: boolean): void;
  closeFd(fd: number): void;
  /** A close-on-exec duplicate of `fd`. */
  dupFd(fd: number): number;

  // ---- shared memory (native/shm.cc) ----
  /** A new zero-filled anonymous segment (memfd) of `size` bytes: its fd, close-on-exec. */
  shmCreateAnon(size: number): number;
  /** shm_open of `name` (leading '/'): with `create`, a new 0600 segment of `size` bytes (O_EXCL). Errors carry `code` (ENOENT, EEXIST…). */
  shmOpen(name: string, create: boolean, size: number): number;
  shmUnlink(name: string): void;
  /** Size in bytes of the segment behind `fd`. */
  shmSize(fd: number): number;
  /** A shared mapping of `size` bytes of `fd` as an ArrayBuffer; unmapped when the buffer is collected. */
  shmMap(fd: number, size: number): ArrayBuffer;
  /** Detaches a buffer made by shmMap (every view of it becomes empty); the mapping goes on the next turn of the loop. */
  shmUnmap(buf: ArrayBuffer): void;
  /** Tells this process's tracker that it created (true) or unlinked (false) the named segment. */
  trackShm(name: string, registered: boolean): void;
  /** Pid of this process's tracker, 0 before the first named segment. */
  trackerPid(): number;

  // ---- waits on shared words (native/sync.cc); results: 0 done, 1 done after the holder died, 2 timed out, 3 cancelled ----
  /** [tid, token]: the calling thread's identity as a holder (the token tells a reused tid apart). */
  threadToken(): [number, number];
  /** Contended acquire of the lock word at int32 `index` (timeoutMs < 0: none; spins spinUs first). */
  lockAcquire(buf: ArrayBuffer, index: number, me: number, token: number, timeoutMs: number, spinUs: number): number;
  /** Contended acquire of a semaphore with `slots` holder records. */
  semAcquire(buf: ArrayBuffer, index: number, me: number, token: number, slots: number, timeoutMs: number, spinUs: number): number;
  /** Gives back the units of a semaphore's holders that died; true if any came back. */
  semRecover(buf: ArrayBuffer, index: number, slots: number): boolean;
  /** Waits while the word at `index` equals `value`: 0 once it differs, 2 on timeout. */
  waitWhile(buf: ArrayBuffer, index: number, value: number, timeoutMs: number, spinUs: number): number;
  futexWake(buf: ArrayBuffer, index: number, count: number): number;
  /**
   * One of the waits above on a waiter thread of ours (kind 0 lock: a=me, b=token; 1 semaphore:
   * a=me, b=token, c=slots; 2 waitWhile: a=value); `done(result)` is called on the event loop.
   * Returns an id for cancelWait. A pending wait keeps the process alive.
   */
  waitAsync(kind: 0 | 1 | 2, buf: ArrayBuffer, index: number, a: number, b: number, c: number, timeoutMs: number, spinUs: number, done: (result: number) => void): number;
  /** Ends a pending waitAsync early; its `done` gets 3 (or the result it reached meanwhile). */
  cancelWait(id: number): void;

  // ---- a queue's fd side channel (native/ring.cc): one datagram per message that carries fds ----
  /** A non-blocking, close-on-exec SOCK_SEQPACKET socketpair. */
  fdPair(): [number, number];
  /** Sends `fds` (1..253; the caller keeps its own) tagged `tag`; false if the socket stayed full for `timeoutMs` (0: no wait, < 0: none). */
  fdSend(sock: number, tag: number, fds: number[], timeoutMs: number): boolean;
  /** Clones of the fds of the datagram tagged `tag`, which stays queued; older datagrams are dropped. null: none with that tag. */
  fdPeek(sock: number, tag: number): number[] | null;
  /** Removes the head datagram (the one fdPeek returned) and closes its fds. */
  fdDrop(sock: number): void;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Linux with musl (Alpine) needs its own binary: the glibc one would not load. The dynamic
 * loader mapped into this process tells (process.report would too, at ~15 times the cost).
 */
function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes('/ld-musl-');
  } catch {
    return false;
  }
}

export const platformTag = `${process.platform}-${process.arch}${isMusl() ? '-musl' : ''}`;

const BUILD_HINT =
  'To build it from source: clone the multiproc repository, run `npm ci && npm run build:native` there ' +
  '(needs python3, make and a C++17 compiler), then point MULTIPROC_NATIVE at its build/Release/multiproc.node.';

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.MULTIPROC_NATIVE,
    join(packageRoot, 'build', 'Release', 'multiproc.node'),
    join(packageRoot, 'prebuilds', platformTag, 'multiproc.node'),
  ].filter((p): p is string => !!p);
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    try {
      return require(path) as NativeAddon;
    } catch (e) {
      throw new Error(`multiproc: the native binary ${path} does not load here (${(e as Error).message.split('\n')[0]}). ${BUILD_HINT}`, { cause: e });
    }
  }
  throw new Error(
    `multiproc: no native binary for ${platformTag} (Node ${process.version}). ` +
      `This package ships prebuilt binaries in ${join(packageRoot, 'prebuilds')} for the platforms it was packed on. ${BUILD_HINT}`,
  );
}

export const native: NativeAddon = load();
