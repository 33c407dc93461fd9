// Shared-memory segments (native/shm.cc): anonymous (memfd) and named (shm_open) segments,
// their mappings as ArrayBuffers, and the tracker that unlinks what a dead creator left.
#pragma once
#include <napi.h>

namespace multiproc {
void InitShm(Napi::Env env, Napi::Object exports);

// A mapping made by shmMap, counted: its ArrayBuffer holds one reference, and a waiter thread
// holds one while it waits on words inside, so an environment that ends (and finalizes its
// buffers) never unmaps memory under a thread.
struct Mapping;
// A new reference to the mapping that starts at `addr`, or nullptr if no mapping of ours does.
Mapping* RetainMapping(const void* addr);
void ReleaseMapping(Mapping* m);
}  // namespace multiproc
