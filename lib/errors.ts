// Every error class of the public API (API.md), in one place. Messages name the object,
// what happened and what to do; the classes carry Python's names.

/** Base of the library's own errors, so `instanceof` can tell ours from others. */
export class MultiprocError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A `…Nowait`/non-blocking get found the queue empty (Python's `queue.Empty`). */
export class Empty extends MultiprocError {}
/** A `…Nowait`/non-blocking put found the queue full (Python's `queue.Full`). */
export class Full extends MultiprocError {}
/** A wait ran out of time (Python's `TimeoutError`). */
export class TimeoutError extends MultiprocError {}
/** A Barrier was broken or aborted while waiting (Python's `threading.BrokenBarrierError`). */
export class BrokenBarrierError extends MultiprocError {}
/** The authkey handshake of a Listener/Client failed. */
export class AuthenticationError extends MultiprocError {}
/** A process ended unexpectedly (for example a Pool worker killed mid-task). */
export class ProcessError extends MultiprocError {}
/** The peer of a Connection closed it and no message is left to read (Python's `EOFError`). */
export class EOFError extends MultiprocError {}
/** An error raised in a manager server, rethrown in the caller; `cause` holds the remote stack. */
export class RemoteError extends MultiprocError {}
/** `recvBytesInto` got a message longer than the buffer; the message is in `data`. */
export class BufferTooShort extends MultiprocError {
  constructor(message: string, readonly data: Buffer) {
    super(message);
  }
}
