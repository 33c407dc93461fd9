// Entry point of the native core: creates the per-environment Instance and registers the
// native classes and functions (their typed contract is lib/native.ts).
#include "channel.h"
#include "instance.h"
#include "ring.h"
#include "socket.h"
#include "shm.h"
#include "sync.h"

namespace multiproc {

Instance& GetInstance(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

void CallFromLoop(napi_env env, napi_async_context ctx, napi_value recv, napi_value fn, size_t argc, const napi_value* argv) {
  napi_value result;
  if (napi_make_callback(env, ctx, recv, fn, argc, argv, &result) != napi_pending_exception) return;
  napi_value exc;
  bool is_error = false;
  if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && napi_is_error(env, exc, &is_error) == napi_ok && is_error)
    napi_fatal_exception(env, exc);
}

void Instance::CloseHandle(uv_handle_t* h) {
  closing++;
  h->data = this;
  uv_close(h, [](uv_handle_t* handle) {
    auto* inst = static_cast<Instance*>(handle->data);
    // Every handle we close is a uv_poll_t, uv_idle_t or uv_async_t allocated with new.
    if (handle->type == UV_POLL) delete reinterpret_cast<uv_poll_t*>(handle);
    else if (handle->type == UV_ASYNC) delete reinterpret_cast<uv_async_t*>(handle);
    else delete reinterpret_cast<uv_idle_t*>(handle);
    if (--inst->closing == 0 && inst->teardown) {
      napi_async_cleanup_hook_handle done = inst->teardown;
      inst->teardown = nullptr;
      napi_remove_async_cleanup_hook(done);
    }
  });
}

// The environment ends: close every channel now, and let it go on once libuv has run all
// the close callbacks (an async cleanup hook, so that they run before the addon is unloaded).
static void Teardown(napi_async_cleanup_hook_handle done, void* arg) {
  auto* inst = static_cast<Instance*>(arg);
  // Copy: Channel::Shutdown erases itself from the set.
  std::vector<Channel*> all(inst->live.begin(), inst->live.end());
  for (Channel* ch : all) ch->Shutdown();
  if (inst->waits) {
    inst->waits->Shutdown(inst->env);
    delete inst->waits;
    inst->waits = nullptr;
  }
  if (inst->closing == 0) napi_remove_async_cleanup_hook(done);
  else inst->teardown = done;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* inst = new Instance();
  inst->env = env;
  if (napi_get_uv_event_loop(env, &inst->loop) != napi_ok) {
    delete inst;
    NAPI_THROW(Napi::Error::New(env, "multiproc: cannot reach the event loop"), exports);
  }
  env.SetInstanceData(inst);
  // Runs before the loop of a worker thread or the main thread goes away; the instance
  // data itself is freed by Node after the cleanup hooks.
  if (napi_add_async_cleanup_hook(env, Teardown, inst, nullptr) != napi_ok) {
    NAPI_THROW(Napi::Error::New(env, "multiproc: cannot register the environment's cleanup"), exports);
  }
  Channel::Init(env, exports);
  InitProcess(env, exports);
  InitSocket(env, exports);
  InitShm(env, exports);
  InitSync(env, exports);
  InitRing(env, exports);
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
