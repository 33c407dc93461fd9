// Entry point of the native core: creates the per-environment Instance and registers the
// native classes and functions (their typed contract is lib/native.ts).
#include "channel.h"
#include "instance.h"

namespace multiproc {

Instance& GetInstance(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

static void Teardown(Instance* inst) {
  // Copy: Channel::Shutdown erases itself from the set.
  std::vector<Channel*> all(inst->live.begin(), inst->live.end());
  for (Channel* ch : all) ch->Shutdown();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* inst = new Instance();
  if (napi_get_uv_event_loop(env, &inst->loop) != napi_ok) {
    delete inst;
    NAPI_THROW(Napi::Error::New(env, "multiproc: cannot reach the event loop"), exports);
  }
  env.SetInstanceData(inst);
  // Runs before the loop of a worker thread or the main thread goes away; the instance
  // data itself is freed by Node after the cleanup hooks.
  env.AddCleanupHook(Teardown, inst);
  Channel::Init(env, exports);
  InitProcess(env, exports);
  return exports;
}

}  // namespace multiproc

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return multiproc::Init(env, exports); }

NODE_API_MODULE(multiproc, InitModule)

#if defined(__GLIBCXX__) && defined(__linux__)
#include <new>
// GCC 11+ headers call this from std::allocator, and it lives in libstdc++ 3.4.29 (GCC 11). A
// local definition keeps the prebuilt binary loadable with the older libstdc++ of systems that
// Node 20 itself runs on (glibc 2.28 era); scripts/prebuild.mjs checks the versions needed.
namespace std {
void __throw_bad_array_new_length() { throw std::bad_array_new_length(); }
}  // namespace std
#endif
