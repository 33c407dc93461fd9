// The fd side channel of a queue's ring (native/ring.cc): fdPair, fdSend, fdPeek, fdDrop.
// The ring itself is TypeScript (lib/queue-ring.ts): Atomics on the shared mapping.
#pragma once
#include <napi.h>

namespace multiproc {
void InitRing(Napi::Env env, Napi::Object exports);
}  // namespace multiproc
