// Process helpers that Node does not offer: the exit status of a child without reaping it
// (libuv reaps its own children and must still see them), the parent-death signal, and
// close-on-exec control.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <string>

#include "instance.h"

namespace multiproc {

namespace {

Napi::Error SysError(Napi::Env env, const char* syscall, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

// exitStatus(pid, block) -> null while the child runs; else its Python-style exit code
// (n for exit(n), -signal for a death by signal); undefined if it is no child of ours or
// was already reaped (then the ChildProcess 'exit' event has the answer).
// WNOWAIT leaves the zombie for libuv to reap, so ChildProcess still emits 'exit'.
Napi::Value ExitStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = pid_t(info[0].As<Napi::Number>().Int32Value());
  bool block = info[1].ToBoolean();
  siginfo_t si;
  for (;;) {
    memset(&si, 0, sizeof(si));
    int r = waitid(P_PID, id_t(pid), &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
    if (r == 0) break;
    if (errno == EINTR) continue;
    if (errno == ECHILD) return env.Undefined();
    throw SysError(env, "waitid", errno);
  }
  if (si.si_pid == 0) return env.Null();  // WNOHANG and still running
  if (si.si_code == CLD_EXITED) return Napi::Number::New(env, si.si_status);
  return Napi::Number::New(env, -si.si_status);  // CLD_KILLED / CLD_DUMPED
}

// setParentDeathSignal(signal, expectedParentPid) -> false if the parent is already gone.
// The check after prctl closes the race where the parent died before the signal was armed.
Napi::Value SetParentDeathSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sig = info[0].As<Napi::Number>().Int32Value();
  pid_t expected = pid_t(info[1].As<Napi::Number>().Int32Value());
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, sig) != 0) throw SysError(env, "prctl(PR_SET_PDEATHSIG)", errno);
#else
  (void)sig;
#endif
  return Napi::Boolean::New(env, getppid() == expected);
}

// setCloexec(fd, on)
Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].ToBoolean();
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0) throw SysError(env, "fcntl(F_GETFD)", errno);
  int want = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
  if (want != fl && fcntl(fd, F_SETFD, want) != 0) throw SysError(env, "fcntl(F_SETFD)", errno);
  return env.Undefined();
}

// closeFd(fd): for fds received but never adopted.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0) close(fd);
  return info.Env().Undefined();
}

// dupFd(fd) -> a close-on-exec duplicate.
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) throw SysError(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
  return Napi::Number::New(env, d);
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("exitStatus", Napi::Function::New(env, ExitStatus, "exitStatus"));
  exports.Set("setParentDeathSignal", Napi::Function::New(env, SetParentDeathSignal, "setParentDeathSignal"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
}

}  // namespace multiproc
