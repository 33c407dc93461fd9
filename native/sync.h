// Waits on words in shared memory (native/sync.cc): the contended paths of locks and semaphores,
// waits for a word to change, and the per-environment pool of waiter threads for async waits.
#pragma once
#include <napi.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace multiproc {

struct Instance;
struct Mapping;

// One async wait: run on a waiter thread, completed on the environment's loop.
struct WaitJob {
  int kind;
  std::atomic<int32_t>* base;  // inside `mapping`, which the job holds a reference to
  int32_t a, b, c;
  int64_t deadline_ns;  // absolute (CLOCK_MONOTONIC), -1 for none
  int64_t spin_ns;
  int64_t spin_until_ns = 0;  // while spinning on the loop
  std::atomic<bool> cancel{false};
  int result = 3;
  uint32_t id = 0;
  Mapping* mapping = nullptr;
  napi_ref callback = nullptr;
};

// Waiter threads of one environment. Each pending async wait occupies one thread of ours (never
// libuv's pool) parked in the kernel on the word; idle threads stay a while for the next wait.
class WaitPool {
 public:
  explicit WaitPool(Instance* inst) : inst_(inst) {}
  // Loop thread only.
  uint32_t Submit(napi_env env, WaitJob* job);
  void Cancel(uint32_t id);
  // The environment ends: cancel everything, wait for the threads, close the loop handle.
  void Shutdown(napi_env env);

 private:
  void ThreadMain();
  void JoinExited();
  static void OnDone(uv_async_t* h);
  static void OnIdle(uv_idle_t* h);
  void Spin();
  void Deliver();
  void DeliverOne(WaitJob* job);
  void ToThread(WaitJob* job);

  Instance* inst_;
  napi_env env_ = nullptr;
  uv_async_t* async_ = nullptr;
  // A new wait first spins on the loop itself: an idle handle tries it once per loop turn (and
  // makes libuv poll without sleeping) until its spin time is over; only then does it go to a
  // thread, which parks at once. No thread hand-off, no eventfd wake-up of the loop, and no CPU
  // but the loop's while it spins. It never blocks the loop.
  uv_idle_t* spin_idle_ = nullptr;
  std::vector<WaitJob*> spinning_;  // loop thread only
  napi_async_context async_ctx_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;       // jobs for idle threads; thread exits for Shutdown
  std::deque<WaitJob*> queue_;
  std::vector<WaitJob*> done_;
  std::unordered_map<uint32_t, WaitJob*> pending_;  // loop thread only
  uint32_t next_id_ = 0;
  // std::thread rather than pthread_create: libstdc++ makes the call, so the binary needs no
  // glibc 2.34 symbol (scripts/prebuild.mjs checks). Threads get glibc's default stack size.
  std::unordered_map<std::thread::id, std::thread> threads_;  // started and not yet joined
  std::vector<std::thread::id> exited_;                      // ended, to be joined
  int idle_ = 0;
  bool stopping_ = false;
};

void InitSync(Napi::Env env, Napi::Object exports);

}  // namespace multiproc
