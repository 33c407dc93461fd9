// Anonymous shared-memory segments: a memfd mapped into this process, whose fd travels to other
// processes (SCM_RIGHTS) so they map the same pages. The kernel frees it with its last fd and mapping.
import { native } from './native.js';
import { registerReducer } from './reduction.js';

// The fd is ours until the segment is collected (the mapping goes with its ArrayBuffer).
const closer = new FinalizationRegistry<number>((fd) => {
  try {
    native.closeFd(fd);
  } catch {
    // already gone with the process's teardown
  }
});

export class Segment {
  readonly fd: number;
  readonly size: number;
  readonly buffer: ArrayBuffer;

  private constructor(fd: number, size: number) {
    this.fd = fd;
    this.size = size;
    try {
      this.buffer = native.shmMap(fd, size);
    } catch (e) {
      native.closeFd(fd);
      throw e;
    }
    closer.register(this, fd);
  }

  /** A new zero-filled segment of `size` bytes. */
  static create(size: number): Segment {
    return new Segment(native.shmCreateAnon(size), size);
  }

  /** Maps a segment whose fd arrived from another process; the Segment owns the fd. */
  static adopt(fd: number): Segment {
    return new Segment(fd, native.shmSize(fd));
  }

  /** int32 words over the whole segment. */
  words(): Int32Array {
    return new Int32Array(this.buffer, 0, this.size >>> 2);
  }
}

// A bare segment travels as its fd (for internal users and tests; the public types wrap it).
registerReducer<Segment, { fd: number }>({
  type: 'Segment',
  cls: Segment as unknown as abstract new () => Segment,
  reduce: (s, ctx) => ({ fd: ctx.addFd(s.fd) }),
  rebuild: (s, ctx) => Segment.adopt(ctx.fd(s.fd)),
});
