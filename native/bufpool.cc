// The block pool of bufpool.h: power-of-two classes from 64 KiB to 8 MiB, at most 64 MiB kept.
// It is process-wide, behind a mutex, for a reason: a block comes back from the finalizer of a
// Buffer, which may run in another environment's teardown (worker threads) after the
// environment that allocated it is gone.
#include "bufpool.h"

#include <cstdlib>
#include <mutex>
#include <vector>

namespace multiproc {

namespace {

constexpr int kMinShift = 16;  // 64 KiB
constexpr int kMaxShift = 23;  // 8 MiB
constexpr size_t kKeepBytes = 64u << 20;

struct Pool {
  std::mutex mu;
  std::vector<char*> free[kMaxShift - kMinShift + 1];
  size_t kept = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: finalizers may run during process exit
  return *p;
}

int ClassOf(size_t size) {
  int shift = kMinShift;
  while (shift <= kMaxShift && (size_t(1) << shift) < size) shift++;
  return shift;
}

}  // namespace

char* PoolAlloc(size_t size, size_t* cap) {
  int shift = ClassOf(size);
  if (shift > kMaxShift) {
    *cap = size;
    return static_cast<char*>(malloc(size ? size : 1));
  }
  *cap = size_t(1) << shift;
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    auto& list = p.free[shift - kMinShift];
    if (!list.empty()) {
      char* b = list.back();
      list.pop_back();
      p.kept -= *cap;
      return b;
    }
  }
  return static_cast<char*>(malloc(*cap));
}

void PoolFree(char* block, size_t cap) {
  if (!block) return;
  int shift = ClassOf(cap);
  if (shift <= kMaxShift && (size_t(1) << shift) == cap) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.kept + cap <= kKeepBytes) {
      p.free[shift - kMinShift].push_back(block);
      p.kept += cap;
      return;
    }
  }
  free(block);
}

}  // namespace multiproc
