// The public surface of multiproc (API.md). Each name is defined in the module of its concept.
export { Connection, Pipe, DEFAULT_MAX_MESSAGE_BYTES } from './connection.js';
export type { ConnectionOptions, PipeOptions } from './connection.js';
export { Process, Sentinel, currentProcess, parentProcess, activeChildren, cpuCount } from './process.js';
export type { ProcessOptions, ProcessInfo, Target } from './process.js';
export { setStartMethod, getStartMethod } from './context.js';
export type { StartMethod } from './context.js';
export { Listener, Client, ClientSync } from './listener.js';
export type { Address, AuthKey, ListenerOptions, ClientOptions, SocketFamily } from './listener.js';
export { wait } from './wait.js';
export {
  Manager, BaseManager, SyncManager, BaseProxy, ManagerServer,
  DictProxy, ListProxy, NamespaceProxy, QueueProxy, JoinableQueueProxy, AcquirerProxy, LockProxy,
  SemaphoreProxy, ConditionProxy, EventProxy, BarrierProxy, ValueProxy, ArrayProxy, PoolProxy,
} from './managers.js';
export type { BaseManagerOptions, RegisterOptions, Token } from './managers.js';
export {
  Empty, Full, TimeoutError, BrokenBarrierError, AuthenticationError, ProcessError,
  EOFError, RemoteError, BufferTooShort, MultiprocError,
} from './errors.js';
export { Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier } from './synchronize.js';
export type { AcquireOptions, SyncOptions, SemaphoreOptions, BarrierOptions } from './synchronize.js';
export { Value, RawValue, SharedArray, RawArray, SynchronizedValue, RawSharedValue, SynchronizedArray, RawSharedArray } from './sharedctypes.js';
export type { Typecode, ValueOptions, CValue, CInput, CView, Synchronized, AnyLock } from './sharedctypes.js';
export { SharedMemory, ShareableList } from './shared-memory.js';
export type { SharedMemoryOptions, ShareableItem } from './shared-memory.js';
export { Queue, SimpleQueue, JoinableQueue, DEFAULT_QUEUE_CAPACITY } from './queues.js';
export type { QueueOptions, SimpleQueueOptions, QueueWaitOptions } from './queues.js';
export { Pool, ThreadPool, AsyncResult, IMapIterator } from './pool.js';
export type { PoolOptions, ApplyOptions, MapOptions, MapAsyncOptions } from './pool.js';
export { RemoteTraceback } from './pool-protocol.js';
