// The one interface wait() understands: each waitable type says whether it is ready now and
// how to be told when it becomes ready.

export const kWaitable = Symbol('multiproc.waitable');

export interface WaitHandle {
  /** Ready right now (without waiting). */
  ready(): boolean;
  /** Calls `cb` (at least once) when it may have become ready; returns a canceller. */
  watch(cb: () => void): () => void;
}

export interface Waitable {
  [kWaitable](): WaitHandle;
}

export function isWaitable(x: unknown): x is Waitable {
  return typeof x === 'object' && x !== null && typeof (x as Waitable)[kWaitable] === 'function';
}
