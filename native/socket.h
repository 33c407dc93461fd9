// Stream sockets for Listener and Client: bind/listen, non-blocking accept, a connect completed
// on the event loop, and FdWatcher, a uv_poll that calls JS when an fd is readable or writable.
#pragma once
#include <napi.h>
#include <uv.h>

#include <memory>

namespace multiproc {

struct Instance;

// Watches one fd on the event loop (never the thread pool). JS owns the fd and closes the watcher
// before it; while the watcher is open, an environment that ends (a worker thread) closes the fd
// with it, since no JS runs then to do it. Started, it keeps the loop alive and itself uncollected.
class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit FdWatcher(const Napi::CallbackInfo& info);
  ~FdWatcher() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnEnvCleanup(void* arg);
  void StopNow();
  void CloseNow();

  Instance* inst_;
  napi_env env_;
  uv_poll_t* poll_ = nullptr;
  int fd_ = -1;
  bool held_ = false;
  bool hook_ = false;  // the environment cleanup hook is registered
  Napi::FunctionReference cb_;
  std::unique_ptr<Napi::AsyncContext> async_ctx_;
};

// listen, accept, connect, connectResult, fdPoll, resolve (see lib/native.ts for the contract).
void InitSocket(Napi::Env env, Napi::Object exports);

}  // namespace multiproc
