// Every child process a test starts carries this argument, so the suite can find leftovers. It
// names this checkout, so that suites of two checkouts running at once do not see each other's.
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const MARKER = `--multiproc-test-child=${ROOT}`;
/** Children started through `Process` run this checkout's bootstrap. */
export const BOOTSTRAP_PATH = resolve(ROOT, 'dist', 'bootstrap.js');
