// The fd side channel of a queue's ring (lib/queue-ring.ts): file descriptors cannot live in
// shared memory, so a message that carries some sends them here, one datagram per message.
//
// A SOCK_SEQPACKET socketpair: each datagram is a 4-byte tag (the message's fd tag, which the
// ring record repeats) and its fds by SCM_RIGHTS. A consumer *peeks* the datagram (the kernel
// clones the fds into it) and drops it only after it has committed the ring entry, so a consumer
// killed in between leaves both for the next one. Datagrams whose tag is older than the one
// asked for come from a producer that died between sending and committing: they are dropped.
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "ring.h"

namespace multiproc {

namespace {

constexpr int kMaxFds = 253;  // SCM_MAX_FD: the kernel refuses more in one message

Napi::Error SysError(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, -err));
  const char* code = err == EBADF ? "EBADF" : err == EMFILE ? "EMFILE" : err == ENFILE ? "ENFILE" : err == ENOBUFS ? "ENOBUFS" : err == ETOOMANYREFS ? "ETOOMANYREFS" : "ESYS";
  e.Set("code", Napi::String::New(env, code));
  return e;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);  // a close that fails (EINTR) has still released the fd on Linux
}

// Control buffer big enough for kMaxFds, aligned as cmsghdr needs.
union Control {
  char buf[CMSG_SPACE(sizeof(int) * kMaxFds)];
  cmsghdr align;
};

// One recvmsg of the head datagram: its tag and the fds that came with it (owned by the caller).
// 0 on success, else an errno (EAGAIN: no datagram).
int Receive(int sock, int flags, uint32_t* tag, std::vector<int>* fds, bool* truncated) {
  Control control;
  iovec iov{tag, sizeof *tag};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t r;
  do r = recvmsg(sock, &msg, flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, data + i * sizeof(int), sizeof fd);
      fds->push_back(fd);
    }
  }
  *truncated = (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0 || r != ssize_t(sizeof *tag);
  return 0;
}

// fdPair() -> [a, b]: a non-blocking, close-on-exec SOCK_SEQPACKET socketpair.
Napi::Value FdPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) throw SysError(env, "socketpair(AF_UNIX, SOCK_SEQPACKET)", errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

// fdSend(sock, tag, fds, timeoutMs) -> true once sent; false when the socket stayed full for
// timeoutMs (0: do not wait; < 0: no limit). The caller keeps its own fds.
Napi::Value FdSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = info[0].As<Napi::Number>().Int32Value();
  uint32_t tag = info[1].As<Napi::Number>().Uint32Value();
  Napi::Array list = info[2].As<Napi::Array>();
  double timeout = info[3].As<Napi::Number>().DoubleValue();
  uint32_t n = list.Length();
  if (n == 0 || n > kMaxFds) throw Napi::RangeError::New(env, "multiproc: a queue message carries 1 to 253 file descriptors");
  Control control;
  memset(&control, 0, sizeof control);
  iovec iov{&tag, sizeof tag};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  unsigned char* data = CMSG_DATA(c);
  for (uint32_t i = 0; i < n; i++) {
    int fd = list.Get(i).As<Napi::Number>().Int32Value();
    memcpy(data + i * sizeof(int), &fd, sizeof fd);
  }
  int64_t deadline = timeout < 0 ? -1 : NowMs() + int64_t(timeout);
  for (;;) {
    ssize_t r = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw SysError(env, "sendmsg on the queue's fd channel", errno);
    int64_t left = deadline < 0 ? -1 : deadline - NowMs();
    if (deadline >= 0 && left <= 0) return Napi::Boolean::New(env, false);
    pollfd p{sock, POLLOUT, 0};
    int pr = poll(&p, 1, left < 0 || left > INT32_MAX ? -1 : int(left));
    if (pr < 0 && errno != EINTR) throw SysError(env, "poll on the queue's fd channel", errno);
  }
}

// Drops the head datagram and closes the fds it carried.
int DropHead(int sock) {
  uint32_t tag;
  std::vector<int> fds;
  bool truncated;
  int err = Receive(sock, 0, &tag, &fds, &truncated);
  CloseAll(fds);
  return err;
}

// fdPeek(sock, tag) -> the fds of the datagram tagged `tag` (clones the caller owns; the
// datagram stays until fdDrop), dropping older datagrams on the way; null when there is none.
Napi::Value FdPeek(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = info[0].As<Napi::Number>().Int32Value();
  uint32_t want = info[1].As<Napi::Number>().Uint32Value();
  for (;;) {
    uint32_t tag = 0;
    std::vector<int> fds;
    bool truncated = false;
    int err = Receive(sock, MSG_PEEK, &tag, &fds, &truncated);
    if (err == EAGAIN || err == EWOULDBLOCK) return env.Null();
    if (err) throw SysError(env, "recvmsg on the queue's fd channel", err);
    int32_t age = int32_t(tag - want);
    if (age == 0 && !truncated) {
      Napi::Array out = Napi::Array::New(env, fds.size());
      for (size_t i = 0; i < fds.size(); i++) out.Set(uint32_t(i), Napi::Number::New(env, fds[i]));
      return out;
    }
    CloseAll(fds);
    if (age > 0) return env.Null();  // ours is gone: the caller reports the lost message
    // Older (or malformed): a producer sent it and died before committing its message.
    err = DropHead(sock);
    if (err && err != EAGAIN && err != EWOULDBLOCK) throw SysError(env, "recvmsg on the queue's fd channel", err);
  }
}

// fdDrop(sock): removes the head datagram (the one fdPeek returned), closing its fds.
Napi::Value FdDrop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int err = DropHead(info[0].As<Napi::Number>().Int32Value());
  if (err && err != EAGAIN && err != EWOULDBLOCK) throw SysError(env, "recvmsg on the queue's fd channel", err);
  return env.Undefined();
}

}  // namespace

void InitRing(Napi::Env env, Napi::Object exports) {
  exports.Set("fdPair", Napi::Function::New(env, FdPair, "fdPair"));
  exports.Set("fdSend", Napi::Function::New(env, FdSend, "fdSend"));
  exports.Set("fdPeek", Napi::Function::New(env, FdPeek, "fdPeek"));
  exports.Set("fdDrop", Napi::Function::New(env, FdDrop, "fdDrop"));
}

}  // namespace multiproc
