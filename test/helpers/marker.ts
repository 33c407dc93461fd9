// Every child process a test starts carries this argument, so the suite can find leftovers.
export const MARKER = '--multiproc-test-child';
