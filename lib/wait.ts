// wait(): Python's multiprocessing.connection.wait, on the event loop.
import { isWaitable, kWaitable, type WaitHandle } from './waitable.js';

/**
 * Waits until at least one of `objects` is ready — a Connection with a message or at EOF, a
 * Process sentinel whose process ended, a Listener with a pending connection — or until
 * `timeoutMs` passes, and resolves to those that are ready (`[]` on timeout).
 */
export function wait<T extends object>(objects: Iterable<T>, timeoutMs?: number | null): Promise<T[]> {
  let list: T[];
  let handles: WaitHandle[];
  try {
    list = [...objects];
    handles = list.map((o, i) => {
      if (!isWaitable(o)) throw new TypeError(`wait: objects[${i}] cannot be waited on: pass Connections, Process sentinels or Listeners`);
      return o[kWaitable]();
    });
    if (timeoutMs !== undefined && timeoutMs !== null && (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs))) {
      throw new TypeError(`wait: timeoutMs must be a number of milliseconds, got ${String(timeoutMs)}`);
    }
  } catch (e) {
    return Promise.reject(e);
  }
  const readyNow = () => list.filter((_, i) => handles[i]!.ready());
  const now = readyNow();
  if (now.length || timeoutMs === 0 || list.length === 0 && timeoutMs !== undefined && timeoutMs !== null) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cancels: (() => void)[] = [];
    const finish = (value: T[]) => {
      clearTimeout(timer);
      for (const c of cancels) c();
      resolve(value);
    };
    const check = () => {
      try {
        const r = readyNow();
        if (r.length) finish(r);
      } catch (e) {
        clearTimeout(timer);
        for (const c of cancels) c();
        reject(e);
      }
    };
    for (const h of handles) cancels.push(h.watch(check));
    if (timeoutMs !== undefined && timeoutMs !== null && timeoutMs !== Infinity) {
      timer = setTimeout(() => finish(readyNow()), Math.max(0, timeoutMs));
    }
  });
}
