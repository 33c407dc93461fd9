// Per-environment state of the addon (main thread or a worker thread): the live channels,
// so that a blocking recv can flush this environment's queued output, and teardown closes them.
#pragma once
#include <napi.h>
#include <uv.h>
#include <unordered_set>

namespace multiproc {

class Channel;
class WaitPool;

struct Instance {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  Napi::FunctionReference channel_ctor;
  // Channels of this environment that hold queued output. A blocking wait polls their fds for
  // POLLOUT too: otherwise `a.send(big); b.recvSync()` in one process would wait forever for
  // an event loop turn that the blocking call itself prevents.
  std::unordered_set<Channel*> pending_writers;
  // Every live channel, so an environment that ends closes its fds and poll handles.
  std::unordered_set<Channel*> live;

  // Closes a handle (allocated with new) and frees it once libuv is done with it. An ending
  // environment waits for these (see Teardown in addon.cc): Node may unload the addon right
  // after, and a close callback must not run in unmapped code.
  void CloseHandle(uv_handle_t* h);
  size_t closing = 0;
  napi_async_cleanup_hook_handle teardown = nullptr;  // set while the environment ends
  // Threads for async waits on shared memory (native/sync.cc), made on first use.
  WaitPool* waits = nullptr;
};

Instance& GetInstance(Napi::Env env);

// Calls fn(argv) from a libuv callback, with plain Node-API calls (no C++ exception may unwind
// through libuv). The JS side only settles promises: an Error thrown there is a bug of ours and
// goes to the process's uncaughtException; anything else is the environment stopping.
void CallFromLoop(napi_env env, napi_async_context ctx, napi_value recv, napi_value fn, size_t argc, const napi_value* argv);

// native/process.cc: exitStatus, setParentDeathSignal, setCloexec, closeFd, dupFd.
void InitProcess(Napi::Env env, Napi::Object exports);

}  // namespace multiproc
