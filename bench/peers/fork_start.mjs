// The child_process.fork() peer of bench/process.mjs: sends its start time (CLOCK_MONOTONIC ns,
// the parent's clock too) first thing, then leaves, as the multiproc target does.
process.send(Number(process.hrtime.bigint()), () => process.disconnect());
