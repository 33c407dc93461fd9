// Shared-memory segments (native/shm.cc): anonymous (memfd) and named (shm_open) segments,
// their mappings as ArrayBuffers, and the tracker that unlinks what a dead creator left.
#pragma once
#include <napi.h>

namespace multiproc {
void InitShm(Napi::Env env, Napi::Object exports);
}  // namespace multiproc
