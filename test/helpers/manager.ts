// One manager for a whole test file: started before its tests, shut down after them.
import { afterAll, beforeAll } from 'vitest';
import { Manager, type SyncManager } from '../../lib/index.js';

/** Starts a Manager() before the file's tests and hands it to `set`; shuts it down after them. */
export function useManager(set: (m: SyncManager) => void): void {
  let m: SyncManager | undefined;
  beforeAll(async () => {
    m = await Manager();
    set(m);
  });
  afterAll(() => m?.shutdown());
}
