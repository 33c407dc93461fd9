// Shared-memory segments: anonymous ones (memfd: the kernel frees them when the last fd and
// mapping go, also after SIGKILL), named ones (/dev/shm, as shm_open makes them: Python's SharedMemory), their mappings
// as external ArrayBuffers, and the per-process tracker that unlinks named segments a dead
// creator left behind.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

#include "instance.h"
#include "shm.h"

namespace multiproc {

struct Mapping {
  void* addr;
  size_t len;
  std::atomic<int> refs{1};
};

namespace {
// Every live mapping by address: process-wide, since waiter threads of any environment may hold one.
std::mutex mappings_mu;
std::unordered_map<const void*, Mapping*> mappings;
}  // namespace

Mapping* RetainMapping(const void* addr) {
  std::lock_guard<std::mutex> lock(mappings_mu);
  auto it = mappings.find(addr);
  if (it == mappings.end()) return nullptr;
  it->second->refs.fetch_add(1);
  return it->second;
}

void ReleaseMapping(Mapping* m) {
  {
    std::lock_guard<std::mutex> lock(mappings_mu);
    if (m->refs.fetch_sub(1) != 1) return;
    mappings.erase(m->addr);
  }
  munmap(m->addr, m->len);
  delete m;
}

namespace {

Napi::Error SysError(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, -err));
  const char* code = err == ENOENT ? "ENOENT" : err == EEXIST ? "EEXIST" : err == EACCES ? "EACCES" : err == EMFILE ? "EMFILE" : err == ENOMEM ? "ENOMEM" : err == EINVAL ? "EINVAL" : "ESYS";
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// shm_open and shm_unlink, as glibc does them on Linux (a file in /dev/shm), called directly:
// glibc 2.34 moved them into libc under a new symbol version, which the prebuilt binary must not
// need (scripts/prebuild.mjs checks the versions).
std::string ShmPath(const std::string& name) { return "/dev/shm" + name; }

int ShmOpen(const std::string& name, int flags, mode_t mode) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 255) {
    errno = EINVAL;
    return -1;
  }
  int fd;
  do fd = open(ShmPath(name).c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

int ShmUnlink(const std::string& name) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos) {
    errno = EINVAL;
    return -1;
  }
  return unlink(ShmPath(name).c_str());
}

int MemfdCreate() {
#ifdef SYS_memfd_create
  int fd = int(syscall(SYS_memfd_create, "multiproc", 1u /* MFD_CLOEXEC */));
  if (fd >= 0 || errno != ENOSYS) return fd;
#endif
  // No memfd (a very old kernel, or not Linux): a named segment unlinked at once is as anonymous.
  char name[64];
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(name, sizeof name, "/multiproc-anon-%d-%ld-%d", getpid(), long(time(nullptr)), attempt);
    int fd = ShmOpen(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      ShmUnlink(name);
      return fd;
    }
    if (errno != EEXIST) return -1;
  }
  return -1;
}

int Truncate(int fd, off_t size) {
  int r;
  do r = ftruncate(fd, size);
  while (r < 0 && errno == EINTR);
  return r;
}

// shmCreateAnon(size) -> fd of a new zeroed anonymous segment (close-on-exec).
Napi::Value CreateAnon(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double size = info[0].As<Napi::Number>().DoubleValue();
  int fd = MemfdCreate();
  if (fd < 0) throw SysError(env, "cannot create a shared-memory segment (memfd_create)", errno);
  if (Truncate(fd, off_t(size)) < 0) {
    int err = errno;
    close(fd);
    throw SysError(env, "cannot size a shared-memory segment of " + std::to_string(uint64_t(size)) + " bytes", err);
  }
  return Napi::Number::New(env, fd);
}

// shmOpen(name, create, size) -> fd. `name` starts with '/'. create: O_CREAT|O_EXCL, mode 0600.
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool create = info[1].As<Napi::Boolean>().Value();
  double size = info[2].As<Napi::Number>().DoubleValue();
  int fd = ShmOpen(name, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd < 0) throw SysError(env, "shm_open " + name, errno);
  if (create) {
    // The umask may have taken bits away, never added any: 0600 stands. Size it.
    if (Truncate(fd, off_t(size)) < 0) {
      int err = errno;
      close(fd);
      ShmUnlink(name);
      throw SysError(env, "cannot size shared memory " + name + " to " + std::to_string(uint64_t(size)) + " bytes", err);
    }
  }
  return Napi::Number::New(env, fd);
}

Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (ShmUnlink(name) < 0) throw SysError(env, "shm_unlink " + name, errno);
  return env.Undefined();
}

// shmSize(fd) -> the segment's size in bytes.
Napi::Value Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  // The end offset is the size (fstat is versioned 2.33 in newer glibc; see ShmOpen).
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) throw SysError(env, "cannot size a shared-memory segment", errno);
  return Napi::Number::New(env, double(end));
}

// shmMap(fd, size) -> an ArrayBuffer over a shared mapping; unmapped when the buffer is collected.
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t size = size_t(info[1].As<Napi::Number>().DoubleValue());
  if (size == 0) return Napi::ArrayBuffer::New(env, 0);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw SysError(env, "cannot map a shared-memory segment of " + std::to_string(size) + " bytes", errno);
  auto* m = new Mapping{p, size};
  {
    std::lock_guard<std::mutex> lock(mappings_mu);
    mappings[p] = m;
  }
  return Napi::ArrayBuffer::New(env, p, size, [](Napi::Env, void*, Mapping* m) { ReleaseMapping(m); }, m);
}

// shmUnmap(buf): detaches a buffer made by shmMap, so that no view of it reaches the pages any
// more (they read as empty); V8 then drops the backing store and the finalizer above releases
// the mapping on the next turn of the loop (unmapped once no waiter thread holds it). Idempotent.
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (!ab.IsDetached()) ab.Detach();
  return env.Undefined();
}

// ---- the tracker ----
//
// A process that creates named segments gets one tracker: a child forked from here that reads
// "R<name>\n" (created) and "U<name>\n" (unlinked) lines from a pipe whose only writer is this
// process (close-on-exec, so children do not inherit it). When the pipe ends — this process
// exited, however it died — the tracker unlinks what is still registered and exits. Process-wide
// state (one tracker per process, shared by all its threads), hence the mutex.

std::mutex tracker_mu;
int tracker_fd = -1;
pid_t tracker_pid = 0;
pid_t tracker_owner = 0;  // the process that started it (a forked child must start its own)

// Runs in the forked child: only async-signal-safe calls (read, write, unlink, mmap, _exit).
[[noreturn]] void TrackerMain(int in) {
  // Keep stdin/stdout/stderr quiet but in place: stderr gets the leak warning.
  if (dup2(in, 0) < 0) _exit(1);
  // Hold no other fd of the parent: a socket or pipe kept open here would hide an EOF from its peer.
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
#endif
  {
    for (int fd = 3; fd < 65536; fd++) close(fd);
  }
  int devnull = open("/dev/null", O_WRONLY);
  if (devnull >= 0) {
    dup2(devnull, 1);
    if (devnull > 2) close(devnull);
  }
  // A Ctrl-C to the group must not stop it before it cleans up; it ends when the pipe ends.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  sigaction(SIGPIPE, &sa, nullptr);
  setsid();
  // Names in fixed slots of an anonymous mapping that grows by doubling.
  const size_t kSlot = 256;
  size_t cap = 1024;
  char* names = static_cast<char*>(mmap(nullptr, cap * kSlot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (names == MAP_FAILED) _exit(1);
  size_t count = 0;
  char buf[4096];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(0, buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += size_t(n);
    size_t start = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf[i] != '\n') continue;
      size_t len = i - start;
      const char* line = buf + start;
      start = i + 1;
      if (len < 2 || len - 1 >= kSlot) continue;
      const char* name = line + 1;
      size_t nlen = len - 1;
      if (line[0] == 'R') {
        if (count == cap) {
          char* grown = static_cast<char*>(mmap(nullptr, cap * 2 * kSlot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
          if (grown == MAP_FAILED) continue;
          memcpy(grown, names, cap * kSlot);
          munmap(names, cap * kSlot);
          names = grown;
          cap *= 2;
        }
        memcpy(names + count * kSlot, name, nlen);
        names[count * kSlot + nlen] = 0;
        count++;
      } else if (line[0] == 'U') {
        for (size_t k = 0; k < count; k++) {
          char* s = names + k * kSlot;
          if (strncmp(s, name, nlen) == 0 && s[nlen] == 0) {
            memcpy(s, names + (count - 1) * kSlot, kSlot);
            count--;
            break;
          }
        }
      }
    }
    memmove(buf, buf + start, have - start);
    have -= start;
    if (have == sizeof buf) have = 0;  // a line longer than any name: drop it
  }
  // The creator is gone: unlink what it left (shm_open's names live in /dev/shm on Linux).
  for (size_t k = 0; k < count; k++) {
    char path[kSlot + 16];
    const char* s = names + k * kSlot;
    size_t nlen = strlen(s);
    memcpy(path, "/dev/shm", 8);
    memcpy(path + 8, s, nlen + 1);  // s starts with '/'
    if (unlink(path) == 0) {
      static const char pre[] = "multiproc: a process exited without unlinking shared memory ";
      static const char post[] = "; the tracker unlinked it (call shm.unlink() when done)\n";
      (void)!write(2, pre, sizeof pre - 1);
      (void)!write(2, s + 1, nlen - 1);
      (void)!write(2, post, sizeof post - 1);
    }
  }
  _exit(0);
}

// Lazily starts this process's tracker; returns its pipe's write end (or -1 with errno).
int TrackerFd() {
  if (tracker_fd >= 0 && tracker_owner == getpid()) return tracker_fd;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(p[0]);
    close(p[1]);
    errno = err;
    return -1;
  }
  if (pid == 0) {
    close(p[1]);
    TrackerMain(p[0]);
  }
  close(p[0]);
  tracker_fd = p[1];
  tracker_pid = pid;
  tracker_owner = getpid();
  return tracker_fd;
}

// trackShm(name, registered): tells the tracker about a named segment this process created
// (true) or unlinked (false).
Napi::Value Track(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool reg = info[1].As<Napi::Boolean>().Value();
  if (name.size() >= 250 || name.find('\n') != std::string::npos) throw Napi::Error::New(env, "multiproc: shared memory name too long for the tracker");
  std::string line = (reg ? "R" : "U") + name + "\n";
  std::lock_guard<std::mutex> lock(tracker_mu);
  int fd = TrackerFd();
  if (fd < 0) throw SysError(env, "cannot start the shared-memory tracker", errno);
  // One line is far below PIPE_BUF: written whole or not at all.
  ssize_t n;
  do n = write(fd, line.data(), line.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) throw SysError(env, "cannot reach the shared-memory tracker", errno);
  return env.Undefined();
}

// trackerPid() -> the pid of this process's tracker, 0 if none was started (for tests).
Napi::Value TrackerPid(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(tracker_mu);
  return Napi::Number::New(info.Env(), tracker_owner == getpid() ? tracker_pid : 0);
}

}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmCreateAnon", Napi::Function::New(env, CreateAnon, "shmCreateAnon"));
  exports.Set("shmOpen", Napi::Function::New(env, Open, "shmOpen"));
  exports.Set("shmUnlink", Napi::Function::New(env, Unlink, "shmUnlink"));
  exports.Set("shmSize", Napi::Function::New(env, Size, "shmSize"));
  exports.Set("shmMap", Napi::Function::New(env, Map, "shmMap"));
  exports.Set("shmUnmap", Napi::Function::New(env, Unmap, "shmUnmap"));
  exports.Set("trackShm", Napi::Function::New(env, Track, "trackShm"));
  exports.Set("trackerPid", Napi::Function::New(env, TrackerPid, "trackerPid"));
}

}  // namespace multiproc
