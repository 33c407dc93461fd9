// Lock words, semaphores and change-waits on shared memory: the paths that must wait. The
// uncontended paths stay in JS (Atomics on the mapping, lib/synchronize.ts); here the spin, the
// futex park, the recovery of slots whose owner died, and the waiter threads for async waits.
//
// Layouts (int32 words from `base`), shared with lib/synchronize.ts:
//   lock:  [0] owner tid (0: free)  [1] owner token (0 while being set or cleared)
//          [2] parked waiters  [3] wake sequence: parked waiters sleep on it (not on [0], whose
//          value repeats: owner A, free, A again); odd while a wake-up is on its way (a releaser
//          makes it odd and wakes one; the next waiter to look makes it even again)
//   sem:   [0] count  [1] parked waiters  [2] bound  [3] robust  [4 + 2k] holder tid, [5 + 2k] holder token, k < slots
//   wait:  [0] the word waited on  [1] parked waiters
// A token identifies a thread beyond its tid: its start time, so a reused tid is never taken for
// the dead owner. Writers set the token after claiming and clear it before releasing, so a token
// read after the claim word is the claimer's own, or 0.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>

#include "instance.h"
#include "shm.h"
#include "sync.h"

namespace multiproc {

namespace {

constexpr int32_t kOwnerMask = 0x3fffffff;
constexpr int kSemHolders = 4;  // first holder record of a semaphore
constexpr int64_t kCheckNs = 100'000'000;  // a parked waiter looks at the owner this often

enum Result { kAcquired = 0, kOwnerDied = 1, kTimedOut = 2, kCancelled = 3 };
enum Kind { kLock = 0, kSem = 1, kWaitWhile = 2 };

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Shared futexes (not FUTEX_PRIVATE): the words live in MAP_SHARED mappings of several processes.
// Waits while *w == val for at most ns (< 0: no limit). True when it timed out.
bool FutexWait(std::atomic<int32_t>* w, int32_t val, int64_t ns) {
  timespec ts;
  timespec* tp = nullptr;
  if (ns >= 0) {
    ts.tv_sec = time_t(ns / 1'000'000'000);
    ts.tv_nsec = long(ns % 1'000'000'000);
    tp = &ts;
  }
  long r = syscall(SYS_futex, reinterpret_cast<int32_t*>(w), FUTEX_WAIT, val, tp, nullptr, 0);
  // EAGAIN (the word changed) and EINTR: the caller looks again.
  return r < 0 && errno == ETIMEDOUT;
}

int FutexWake(std::atomic<int32_t>* w, int count) {
  long r = syscall(SYS_futex, reinterpret_cast<int32_t*>(w), FUTEX_WAKE, count, nullptr, nullptr, 0);
  return r < 0 ? 0 : int(r);
}

// Start time (clock ticks since boot) of thread `tid`: -1 when no such thread runs (gone, or a
// zombie waiting to be reaped, which holds nothing any more).
int64_t TaskStart(int tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", tid);
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n;
  do n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  char* p = strrchr(buf, ')');
  if (!p || p[1] != ' ') return -1;
  char state = p[2];
  if (state == 'Z' || state == 'X' || state == 'x') return -1;
  char* s = p + 2;  // field 3
  for (int field = 3; field < 22; field++) {
    s = strchr(s, ' ');
    if (!s) return -1;
    s++;
  }
  return strtoll(s, nullptr, 10);
}

int32_t TokenOf(int64_t start) { return int32_t(start % 0x7ffffffe) + 1; }

// Whether the holder recorded as (tid, token) is gone. A token of 0 means the record is being
// written or cleared: no thread by that id is a verdict (a holder killed between its claim and
// its token store, or between clearing its token and letting go, would otherwise hold forever),
// a running one is not (the writer, or a thread that reused the id: undecidable, left alone).
bool HolderDead(int32_t tid, int32_t token) {
  int64_t start = TaskStart(tid);
  if (start < 0) return true;
  return token != 0 && TokenOf(start) != token;
}

int64_t Remaining(int64_t deadline, int64_t now) { return deadline < 0 ? -1 : deadline - now; }

// Parked waiters of a lock sleep on its wake sequence (word [3]), not on the owner word: a waiter
// that read owner A could otherwise sleep through A's release if A took the lock again before
// the waiter got into the kernel (the word is A again), and the wake-up meant for it is spent.
std::atomic<int32_t>* LockWakeWord(std::atomic<int32_t>* w) { return w + 3; }

int LockAcquire(std::atomic<int32_t>* w, int32_t me, int32_t token, int64_t deadline, int64_t spin_ns, const std::atomic<bool>* cancel) {
  std::atomic<int32_t>* tok = w + 1;
  std::atomic<int32_t>* parked = w + 2;
  std::atomic<int32_t>* wake = LockWakeWord(w);
  auto claim = [&]() {
    int32_t zero = 0;
    if (w->load(std::memory_order_relaxed) != 0 || !w->compare_exchange_strong(zero, me, std::memory_order_acquire)) return false;
    tok->store(token, std::memory_order_relaxed);
    return true;
  };
  int64_t spin_end = spin_ns > 0 ? NowNs() + spin_ns : 0;
  // Spin: a holder on another CPU usually lets go within microseconds; parking costs two
  // kernel crossings and a wake-up on each side.
  for (unsigned i = 0;; i++) {
    if (claim()) return kAcquired;
    if (spin_end == 0 || ((i & 63) == 0 && NowNs() >= spin_end)) break;
    CpuRelax();
  }
  // Park. Counted (seq_cst) before the last look at the word: a releaser that frees the word
  // and then reads no parked waiters cannot miss us, since we would then see the word free.
  parked->fetch_add(1, std::memory_order_seq_cst);
  int result = kTimedOut;
  for (;;) {
    // The sequence is read before the word: a release after this read changes it (if it wakes
    // anyone), so the sleep below returns at once instead of missing it.
    int32_t seq = wake->load(std::memory_order_seq_cst);
    if (uint32_t(seq) & 1) {
      // A wake-up was on its way (to us or to another waiter, which looks again either way):
      // spent, so that the next release wakes again.
      int32_t even = int32_t(uint32_t(seq) + 1);
      if (!wake->compare_exchange_strong(seq, even, std::memory_order_seq_cst)) continue;
      seq = even;
    }
    if (claim()) {
      result = kAcquired;
      break;
    }
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      result = kCancelled;
      break;
    }
    int32_t v = w->load(std::memory_order_seq_cst);
    if (v == 0) continue;
    int64_t now = NowNs();
    int64_t left = Remaining(deadline, now);
    if (deadline >= 0 && left <= 0) break;
    int64_t slice = left < 0 || left > kCheckNs ? kCheckNs : left;
    bool timed_out = FutexWait(wake, seq, slice);
    if (!timed_out || w->load(std::memory_order_seq_cst) != v) continue;
    // Nothing happened for a whole slice: is the owner still there?
    if (HolderDead(v, tok->load(std::memory_order_seq_cst))) {
      // Exactly the word we judged: if anyone moved meanwhile, we look again.
      if (w->compare_exchange_strong(v, me, std::memory_order_acquire)) {
        tok->store(token, std::memory_order_relaxed);
        result = kOwnerDied;
        break;
      }
    }
  }
  parked->fetch_sub(1, std::memory_order_seq_cst);
  return result;
}

// Records the caller as a holder of one unit (robust semaphores); a full table records nothing.
void SemRecord(std::atomic<int32_t>* base, int slots, int32_t me, int32_t token) {
  for (int k = 0; k < slots; k++) {
    std::atomic<int32_t>* t = base + kSemHolders + 2 * k;
    int32_t zero = 0;
    if (t->load(std::memory_order_relaxed) == 0 && t->compare_exchange_strong(zero, me)) {
      t[1].store(token, std::memory_order_seq_cst);
      return;
    }
  }
}

// Gives back the units of holders that died; true if any came back.
bool SemRecover(std::atomic<int32_t>* base, int slots) {
  bool any = false;
  for (int k = 0; k < slots; k++) {
    std::atomic<int32_t>* t = base + kSemHolders + 2 * k;
    int32_t tid = t->load(std::memory_order_seq_cst);
    if (tid == 0) continue;
    int32_t token = t[1].load(std::memory_order_seq_cst);
    if (!HolderDead(tid, token)) continue;
    // Clear the token first (the record's owner order), then claim the release of the slot.
    if (!t[1].compare_exchange_strong(token, 0)) continue;
    int32_t expect = tid;
    if (!t->compare_exchange_strong(expect, 0)) continue;
    base->fetch_add(1, std::memory_order_release);
    any = true;
  }
  if (any) FutexWake(base, INT_MAX);
  return any;
}

int SemAcquire(std::atomic<int32_t>* base, int32_t me, int32_t token, int slots, int64_t deadline, int64_t spin_ns, const std::atomic<bool>* cancel) {
  std::atomic<int32_t>* waiters = base + 1;
  int64_t spin_end = spin_ns > 0 ? NowNs() + spin_ns : 0;
  auto take = [&]() {
    int32_t c = base->load(std::memory_order_relaxed);
    while (c > 0) {
      if (base->compare_exchange_weak(c, c - 1, std::memory_order_acquire)) {
        SemRecord(base, slots, me, token);
        return true;
      }
    }
    return false;
  };
  for (unsigned i = 0;; i++) {
    if (take()) return kAcquired;
    if (spin_end == 0 || ((i & 63) == 0 && NowNs() >= spin_end)) break;
    CpuRelax();
  }
  waiters->fetch_add(1, std::memory_order_seq_cst);
  int result = kTimedOut;
  bool recovered = false;
  for (;;) {
    if (take()) {
      result = recovered ? kOwnerDied : kAcquired;
      break;
    }
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      result = kCancelled;
      break;
    }
    int64_t now = NowNs();
    int64_t left = Remaining(deadline, now);
    if (deadline >= 0 && left <= 0) break;
    int64_t slice = left < 0 || left > kCheckNs ? kCheckNs : left;
    if (FutexWait(base, 0, slice) && slots > 0 && SemRecover(base, slots)) recovered = true;
  }
  waiters->fetch_sub(1, std::memory_order_seq_cst);
  return result;
}

int WaitWhile(std::atomic<int32_t>* w, int32_t val, int64_t deadline, int64_t spin_ns, const std::atomic<bool>* cancel) {
  int64_t spin_end = spin_ns > 0 ? NowNs() + spin_ns : 0;
  for (unsigned i = 0;; i++) {
    if (w->load(std::memory_order_acquire) != val) return kAcquired;
    if (spin_end == 0 || ((i & 63) == 0 && NowNs() >= spin_end)) break;
    CpuRelax();
  }
  std::atomic<int32_t>* waiters = w + 1;
  // Announce before the last look (seq_cst both sides): a writer that changes the word then
  // reads no waiters cannot miss us, since we then see its change before parking.
  waiters->fetch_add(1, std::memory_order_seq_cst);
  int result = kAcquired;
  for (;;) {
    if (w->load(std::memory_order_seq_cst) != val) break;
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      result = kCancelled;
      break;
    }
    int64_t now = NowNs();
    int64_t left = Remaining(deadline, now);
    if (deadline >= 0 && left <= 0) {
      result = kTimedOut;
      break;
    }
    // A waiter thread's sleep is bounded: a cancel (close(), the environment's teardown) that
    // lands between the look at `cancel` above and the sleep wakes nobody, since the word did not
    // change; the next look, at most kCheckNs later, sees it.
    if (cancel && (left < 0 || left > kCheckNs)) left = kCheckNs;
    FutexWait(w, val, left);
  }
  waiters->fetch_sub(1, std::memory_order_seq_cst);
  return result;
}

// The word a job's thread sleeps on.
std::atomic<int32_t>* ParkWord(WaitJob* j) { return j->kind == kLock ? LockWakeWord(j->base) : j->base; }

// One non-blocking try of a wait (a spin step on the loop): its result, or -1 to go on waiting.
int TryOnce(WaitJob* j) {
  std::atomic<int32_t>* w = j->base;
  switch (j->kind) {
    case kLock: {
      int32_t zero = 0;
      if (w->load(std::memory_order_relaxed) != 0 || !w->compare_exchange_strong(zero, j->a, std::memory_order_acquire)) return -1;
      w[1].store(j->b, std::memory_order_relaxed);
      return kAcquired;
    }
    case kSem: {
      for (int32_t c = w->load(std::memory_order_relaxed); c > 0;) {
        if (w->compare_exchange_weak(c, c - 1, std::memory_order_acquire)) {
          SemRecord(w, j->c, j->a, j->b);
          return kAcquired;
        }
      }
      return -1;
    }
    default:
      return w->load(std::memory_order_acquire) != j->a ? int(kAcquired) : -1;
  }
}

int RunJob(WaitJob* j) {
  switch (j->kind) {
    case kLock: return LockAcquire(j->base, j->a, j->b, j->deadline_ns, j->spin_ns, &j->cancel);
    case kSem: return SemAcquire(j->base, j->a, j->b, j->c, j->deadline_ns, j->spin_ns, &j->cancel);
    default: return WaitWhile(j->base, j->a, j->deadline_ns, j->spin_ns, &j->cancel);
  }
}

// Words each kind needs from `index`.
size_t WordsOf(int kind, int32_t slots) { return kind == kSem ? kSemHolders + 2 * size_t(slots) : kind == kLock ? 4 : 2; }

// The int32 words at `index` of an ArrayBuffer, checked to lie inside it.
std::atomic<int32_t>* Words(Napi::Env env, Napi::Value buf, Napi::Value index, size_t count) {
  if (!buf.IsArrayBuffer()) throw Napi::TypeError::New(env, "multiproc: expected the ArrayBuffer of a shared segment");
  Napi::ArrayBuffer ab = buf.As<Napi::ArrayBuffer>();
  int64_t i = index.As<Napi::Number>().Int64Value();
  if (i < 0 || size_t(i) + count > ab.ByteLength() / 4) throw Napi::RangeError::New(env, "multiproc: word index outside the shared segment");
  static_assert(sizeof(std::atomic<int32_t>) == 4 && alignof(std::atomic<int32_t>) == 4, "lock-free 32-bit atomics");
  return reinterpret_cast<std::atomic<int32_t>*>(static_cast<char*>(ab.Data())) + i;
}

int64_t DeadlineOf(double timeout_ms) { return timeout_ms < 0 ? -1 : NowNs() + int64_t(timeout_ms * 1e6); }
int64_t SpinOf(double micros) { return micros > 0 ? int64_t(micros * 1000) : 0; }

// threadToken() -> [tid, token] of the calling thread: its identity as a holder.
Napi::Value ThreadToken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int tid = int(syscall(SYS_gettid));
  int64_t start = TaskStart(tid);
  if (start < 0) throw Napi::Error::New(env, "multiproc: cannot read this thread's start time from /proc (is /proc mounted?)");
  if (tid > kOwnerMask) throw Napi::Error::New(env, "multiproc: thread id too large for a lock word");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, tid));
  out.Set(1u, Napi::Number::New(env, TokenOf(start)));
  return out;
}

// lockAcquire(buf, index, me, token, timeoutMs, spinUs) -> Result (sync, contended path).
Napi::Value LockAcquireSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = Words(env, info[0], info[1], WordsOf(kLock, 0));
  return Napi::Number::New(env, LockAcquire(w, info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value(),
                                            DeadlineOf(info[4].As<Napi::Number>().DoubleValue()), SpinOf(info[5].As<Napi::Number>().DoubleValue()), nullptr));
}

// semAcquire(buf, index, me, token, slots, timeoutMs, spinUs) -> Result.
Napi::Value SemAcquireSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t slots = info[4].As<Napi::Number>().Int32Value();
  auto* w = Words(env, info[0], info[1], WordsOf(kSem, slots));
  return Napi::Number::New(env, SemAcquire(w, info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value(), slots,
                                           DeadlineOf(info[5].As<Napi::Number>().DoubleValue()), SpinOf(info[6].As<Napi::Number>().DoubleValue()), nullptr));
}

// semRecover(buf, index, slots) -> whether units of dead holders came back.
Napi::Value SemRecoverSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t slots = info[2].As<Napi::Number>().Int32Value();
  auto* w = Words(env, info[0], info[1], WordsOf(kSem, slots));
  return Napi::Boolean::New(env, SemRecover(w, slots));
}

// waitWhile(buf, index, value, timeoutMs, spinUs) -> 0 when the word differs from value, 2 on timeout.
Napi::Value WaitWhileSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = Words(env, info[0], info[1], 2);
  return Napi::Number::New(env, WaitWhile(w, info[2].As<Napi::Number>().Int32Value(), DeadlineOf(info[3].As<Napi::Number>().DoubleValue()),
                                          SpinOf(info[4].As<Napi::Number>().DoubleValue()), nullptr));
}

// futexWake(buf, index, count) -> how many were woken.
Napi::Value Wake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = Words(env, info[0], info[1], 1);
  double n = info[2].As<Napi::Number>().DoubleValue();
  return Napi::Number::New(env, FutexWake(w, n >= INT_MAX ? INT_MAX : int(n)));
}

// waitAsync(kind, buf, index, a, b, c, timeoutMs, spinUs, done(result)) -> id for cancelWait.
Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kind = info[0].As<Napi::Number>().Int32Value();
  if (kind < kLock || kind > kWaitWhile) throw Napi::RangeError::New(env, "multiproc: unknown wait kind");
  auto* job = new WaitJob();
  job->kind = kind;
  job->a = info[3].As<Napi::Number>().Int32Value();
  job->b = info[4].As<Napi::Number>().Int32Value();
  job->c = info[5].As<Napi::Number>().Int32Value();
  try {
    job->base = Words(env, info[1], info[2], WordsOf(kind, job->c));
    if (!info[8].IsFunction()) throw Napi::TypeError::New(env, "multiproc: waitAsync needs a callback");
  } catch (...) {
    delete job;
    throw;
  }
  job->deadline_ns = DeadlineOf(info[6].As<Napi::Number>().DoubleValue());
  job->spin_ns = SpinOf(info[7].As<Napi::Number>().DoubleValue());
  // The mapping stays until the job is done, whatever happens to the buffer meanwhile.
  job->mapping = RetainMapping(info[1].As<Napi::ArrayBuffer>().Data());
  if (!job->mapping) {
    delete job;
    throw Napi::TypeError::New(env, "multiproc: async waits need the ArrayBuffer of a shared segment (shmMap)");
  }
  if (napi_create_reference(env, info[8], 1, &job->callback) != napi_ok) {
    ReleaseMapping(job->mapping);
    delete job;
    throw Napi::Error::New(env, "multiproc: cannot reference the wait's callback");
  }
  Instance& inst = GetInstance(env);
  if (!inst.waits) inst.waits = new WaitPool(&inst);
  return Napi::Number::New(env, inst.waits->Submit(env, job));
}

Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  Instance& inst = GetInstance(info.Env());
  if (inst.waits) inst.waits->Cancel(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

}  // namespace

// ---- WaitPool ----

uint32_t WaitPool::Submit(napi_env env, WaitJob* job) {
  if (!async_) {
    env_ = env;
    async_ = new uv_async_t;
    if (uv_async_init(inst_->loop, async_, OnDone) != 0) {
      delete async_;
      async_ = nullptr;
      ReleaseMapping(job->mapping);
      napi_delete_reference(env, job->callback);
      delete job;
      throw Napi::Error::New(Napi::Env(env), "multiproc: cannot create the event-loop handle for async waits");
    }
    async_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    napi_value name;
    napi_create_string_utf8(env, "multiproc.wait", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, nullptr, name, &async_ctx_);
    spin_idle_ = new uv_idle_t;
    if (uv_idle_init(inst_->loop, spin_idle_) == 0) {
      spin_idle_->data = this;
      uv_unref(reinterpret_cast<uv_handle_t*>(spin_idle_));
    } else {
      delete spin_idle_;
      spin_idle_ = nullptr;
    }
  }
  job->id = ++next_id_;
  if (job->id == 0) job->id = ++next_id_;
  // A pending wait keeps the process alive, as a pending read does.
  if (pending_.empty()) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  pending_[job->id] = job;
  JoinExited();
  if (job->spin_ns > 0 && spin_idle_) {
    job->spin_until_ns = NowNs() + job->spin_ns;
    spinning_.push_back(job);
    uv_idle_start(spin_idle_, OnIdle);
  } else {
    ToThread(job);
  }
  return job->id;
}

// The wait goes to a thread of its own, which parks at once (the spin was done on the loop).
void WaitPool::ToThread(WaitJob* job) {
  job->spin_ns = 0;
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(job);
  // Every queued job needs a thread of its own (a wait may last forever): wake an idle one if
  // there are more idle threads than queued jobs, else start one.
  if (size_t(idle_) >= queue_.size()) {
    cv_.notify_one();
    return;
  }
  try {
    std::thread t([this] { ThreadMain(); });
    threads_.emplace(t.get_id(), std::move(t));
  } catch (const std::system_error&) {
    // No thread for it: fail the wait rather than leave it hanging.
    queue_.erase(std::find(queue_.begin(), queue_.end(), job));
    job->result = kCancelled;
    done_.push_back(job);
    uv_async_send(async_);
  }
}

void WaitPool::ThreadMain() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) break;
      // Idle threads wait a while for the next wait, then end.
      idle_++;
      // wait_until on the system clock: wait_for (steady clock) needs glibc 2.30's pthread_cond_clockwait.
      bool got = cv_.wait_until(lock, std::chrono::system_clock::now() + std::chrono::seconds(5), [&] { return !queue_.empty() || stopping_; });
      idle_--;
      if (!got) break;
      continue;
    }
    WaitJob* job = queue_.front();
    queue_.pop_front();
    lock.unlock();
    job->result = job->cancel.load() ? int(kCancelled) : RunJob(job);
    lock.lock();
    done_.push_back(job);
    uv_async_send(async_);
  }
  exited_.push_back(std::this_thread::get_id());
  cv_.notify_all();
}

// Joins the threads that ended (they are past their last use of the pool, or nearly).
void WaitPool::JoinExited() {
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread::id id : exited_) {
      auto it = threads_.find(id);
      ended.push_back(std::move(it->second));
      threads_.erase(it);
    }
    exited_.clear();
  }
  for (std::thread& t : ended) t.join();
}

void WaitPool::OnDone(uv_async_t* h) { static_cast<WaitPool*>(h->data)->Deliver(); }

void WaitPool::OnIdle(uv_idle_t* h) { static_cast<WaitPool*>(h->data)->Spin(); }

// One loop turn of the spinning waits: each tries once; done ones complete here, expired ones
// go to a thread.
void WaitPool::Spin() {
  int64_t now = NowNs();
  std::vector<WaitJob*> still;
  std::vector<WaitJob*> done;
  for (WaitJob* job : spinning_) {
    int r = job->cancel.load() ? int(kCancelled) : TryOnce(job);
    if (r >= 0) {
      job->result = r;
      done.push_back(job);
    } else if (job->deadline_ns >= 0 && now >= job->deadline_ns) {
      job->result = kTimedOut;
      done.push_back(job);
    } else if (now >= job->spin_until_ns) {
      ToThread(job);
    } else {
      still.push_back(job);
    }
  }
  spinning_.swap(still);
  if (spinning_.empty()) uv_idle_stop(spin_idle_);
  for (WaitJob* job : done) DeliverOne(job);
}

void WaitPool::Deliver() {
  std::vector<WaitJob*> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  for (WaitJob* job : done) DeliverOne(job);
}

void WaitPool::DeliverOne(WaitJob* job) {
  napi_env env = env_;
  pending_.erase(job->id);
  if (pending_.empty() && async_) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    // napi_make_callback wants an object as the receiver: the global one.
    napi_value fn = nullptr, recv, arg, result;
    if (napi_get_reference_value(env, job->callback, &fn) == napi_ok && fn && napi_get_global(env, &recv) == napi_ok &&
        napi_create_int32(env, job->result, &arg) == napi_ok) {
      napi_status st = napi_make_callback(env, async_ctx_, recv, fn, 1, &arg, &result);
      if (st == napi_pending_exception) {
        // The JS side settles promises and does not throw: an Error is our bug, for the process's
        // uncaughtException; anything else is the environment stopping.
        napi_value exc;
        bool is_error = false;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && napi_is_error(env, exc, &is_error) == napi_ok && is_error)
          napi_fatal_exception(env, exc);
      }
    }
    napi_close_handle_scope(env, scope);
  }
  ReleaseMapping(job->mapping);
  napi_delete_reference(env, job->callback);
  delete job;
}

void WaitPool::Cancel(uint32_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  WaitJob* job = it->second;
  job->cancel.store(true);
  // Kick it out of its park; other waiters on the word wake too and simply look again.
  FutexWake(ParkWord(job), INT_MAX);
}

void WaitPool::Shutdown(napi_env env) {
  std::vector<std::thread> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, job] : pending_) {
      job->cancel.store(true);
      FutexWake(ParkWord(job), INT_MAX);
    }
    cv_.notify_all();
    for (auto& [id, t] : threads_) all.push_back(std::move(t));
    threads_.clear();
    exited_.clear();
  }
  // Joined, not just counted: the addon may be unloaded right after this environment ends.
  for (std::thread& t : all) t.join();
  queue_.clear();
  spinning_.clear();
  // Nobody is left to call back: drop the jobs without running their callbacks.
  for (auto& [id, job] : pending_) {
    ReleaseMapping(job->mapping);
    napi_delete_reference(env, job->callback);
    delete job;
  }
  pending_.clear();
  done_.clear();
  if (async_ctx_) napi_async_destroy(env, async_ctx_);
  async_ctx_ = nullptr;
  if (async_) inst_->CloseHandle(reinterpret_cast<uv_handle_t*>(async_));
  async_ = nullptr;
  if (spin_idle_) inst_->CloseHandle(reinterpret_cast<uv_handle_t*>(spin_idle_));
  spin_idle_ = nullptr;
}

void InitSync(Napi::Env env, Napi::Object exports) {
  exports.Set("threadToken", Napi::Function::New(env, ThreadToken, "threadToken"));
  exports.Set("lockAcquire", Napi::Function::New(env, LockAcquireSync, "lockAcquire"));
  exports.Set("semAcquire", Napi::Function::New(env, SemAcquireSync, "semAcquire"));
  exports.Set("semRecover", Napi::Function::New(env, SemRecoverSync, "semRecover"));
  exports.Set("waitWhile", Napi::Function::New(env, WaitWhileSync, "waitWhile"));
  exports.Set("futexWake", Napi::Function::New(env, Wake, "futexWake"));
  exports.Set("waitAsync", Napi::Function::New(env, WaitAsync, "waitAsync"));
  exports.Set("cancelWait", Napi::Function::New(env, CancelWait, "cancelWait"));
}

}  // namespace multiproc
