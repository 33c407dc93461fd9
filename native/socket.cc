// Sockets for Listener and Client: listen, accept, connect, and the FdWatcher that tells JS
// when one is ready. Every syscall is checked; EINTR is retried; EAGAIN means "not now".
#include "socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "instance.h"

namespace multiproc {

namespace {

// An Error shaped like Node's system errors (code, errno, syscall); JS adds the address.
Napi::Error SysError(Napi::Env env, const char* syscall, int err) {
  const char* code = uv_err_name(-err);  // libuv's codes are -errno on POSIX
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err) + " (" + code + ")");
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Error GaiError(Napi::Env env, const std::string& host, int rc) {
  // Node names a failed lookup ENOTFOUND (getaddrinfo) whatever the resolver said exactly.
  Napi::Error e = Napi::Error::New(env, "getaddrinfo " + host + ": " + gai_strerror(rc) + " (ENOTFOUND)");
  e.Set("code", Napi::String::New(env, "ENOTFOUND"));
  e.Set("syscall", Napi::String::New(env, "getaddrinfo"));
  e.Set("hostname", Napi::String::New(env, host));
  return e;
}

void CloseFd(int fd) {
  // close() must not be retried on EINTR on Linux: the fd is released either way.
  if (fd >= 0) close(fd);
}

int FamilyArg(Napi::Env env, const Napi::Value& v) {
  std::string f = v.As<Napi::String>().Utf8Value();
  if (f == "AF_UNIX") return AF_UNIX;
  if (f == "AF_INET") return AF_INET;
  if (f == "AF_INET6") return AF_INET6;
  throw Napi::TypeError::New(env, "family must be 'AF_UNIX', 'AF_INET' or 'AF_INET6', got '" + f + "'");
}

// A sockaddr_un for `path`; a leading NUL names a Linux abstract address (its length is exact).
socklen_t UnixAddr(Napi::Env env, const std::string& path, sockaddr_un* sun) {
  memset(sun, 0, sizeof(*sun));
  sun->sun_family = AF_UNIX;
  bool abstract = !path.empty() && path[0] == '\0';
  // A path needs its terminating NUL; an abstract name has none.
  size_t room = sizeof(sun->sun_path) - (abstract ? 0 : 1);
  if (path.empty() || path.size() > room) {
    Napi::Error e = Napi::Error::New(env, "AF_UNIX address of " + std::to_string(path.size()) + " bytes: it must be 1 to " +
                                              std::to_string(room) + " bytes long");
    e.Set("code", Napi::String::New(env, "ENAMETOOLONG"));
    throw e;
  }
  memcpy(sun->sun_path, path.data(), path.size());
  return socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
}

// The sockaddr of a path (AF_UNIX) or of host:port. `flags` are getaddrinfo's: AI_PASSIVE (''
// means every interface), AI_NUMERICHOST (an IP literal only, no lookup), or 0 (names resolve).
socklen_t SockAddr(Napi::Env env, int family, const std::string& host, int port, int flags, sockaddr_storage* ss) {
  *ss = sockaddr_storage{};
  if (family == AF_UNIX) return UnixAddr(env, host, reinterpret_cast<sockaddr_un*>(ss));
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() && (flags & AI_PASSIVE) ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) throw GaiError(env, host, rc);
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  socklen_t len = res->ai_addrlen;
  freeaddrinfo(res);
  return len;
}

// [host, port] of an AF_INET/AF_INET6 address, or the path of an AF_UNIX one.
Napi::Value AddressOf(Napi::Env env, const sockaddr_storage& ss, socklen_t len) {
  if (ss.ss_family == AF_UNIX) {
    auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (n > 0 && sun->sun_path[0] != '\0') n = strnlen(sun->sun_path, n);  // a path: up to its NUL
    return Napi::String::New(env, sun->sun_path, n);
  }
  char host[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
    port = ntohs(sin6->sin6_port);
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(uint32_t(0), Napi::String::New(env, host));
  a.Set(uint32_t(1), Napi::Number::New(env, port));
  return a;
}

// A non-blocking, close-on-exec stream socket.
int NewSocket(int family) {
#ifdef SOCK_CLOEXEC
  return socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
#else
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)) {
    int err = errno;
    CloseFd(fd);
    errno = err;
    return -1;
  }
  return fd;
#endif
}

// Our Connections read and write with MSG_DONTWAIT and leave the fd's flags alone (see
// native/channel.cc): a socket handed to one, or to CPython, must be in blocking mode.
bool SetBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return false;
  return (fl & O_NONBLOCK) == 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0;
}

// Request/response traffic (managers) must not wait for Nagle's timer.
bool SetNoDelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

// listen(family, host | path, port, backlog) -> [fd, address]: a bound, listening, non-blocking
// socket and its real address ([host, port] with the port chosen for port 0, or the path).
// A host name is resolved with getaddrinfo here, blocking: the Listener constructor is
// synchronous (bound when it returns), as Python's is. IP literals and '' need no lookup.
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = FamilyArg(env, info[0]);
  std::string host = info[1].As<Napi::String>().Utf8Value();
  int port = info[2].As<Napi::Number>().Int32Value();
  int backlog = info[3].As<Napi::Number>().Int32Value();

  sockaddr_storage ss;
  socklen_t len = SockAddr(env, family, host, port, AI_PASSIVE, &ss);

  int fd = NewSocket(family);
  if (fd < 0) throw SysError(env, "socket", errno);
  const char* failed = nullptr;
  if (family != AF_UNIX) {
    // As Python's SocketListener: a restarted server can bind the port of one in TIME_WAIT.
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) failed = "setsockopt";
  }
  if (!failed && bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) failed = "bind";
  if (!failed && listen(fd, backlog) != 0) failed = "listen";
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  if (!failed && getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) != 0) failed = "getsockname";
  if (failed) {
    int err = errno;
    CloseFd(fd);
    throw SysError(env, failed, err);
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::Number::New(env, fd));
  // getsockname of an abstract address reports it exactly; of a path, the path we bound.
  out.Set(uint32_t(1), family == AF_UNIX ? Napi::String::New(env, host) : AddressOf(env, bound, blen));
  return out;
}

// accept(fd) -> [fd, peer address] of a pending connection (blocking, close-on-exec), or null
// when none is pending. A connection the peer already aborted is skipped.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int lfd = info[0].As<Napi::Number>().Int32Value();
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
#ifdef __linux__
    // accept4 without SOCK_NONBLOCK: on Linux the new socket never inherits O_NONBLOCK.
    int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
#else
    int fd = accept(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || !SetBlocking(fd))) {
      int err = errno;
      CloseFd(fd);
      throw SysError(env, "fcntl", err);
    }
#endif
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
      throw SysError(env, "accept", errno);
    }
    if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) && !SetNoDelay(fd)) {
      int err = errno;
      CloseFd(fd);
      throw SysError(env, "setsockopt", err);
    }
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(uint32_t(0), Napi::Number::New(env, fd));
    out.Set(uint32_t(1), AddressOf(env, ss, len));
    return out;
  }
}

// connect(family, ip | path, port) -> [fd, inProgress]. The host must be an IP literal (JS
// resolves names first). When inProgress, wait until the fd is writable, then connectResult.
// EAGAIN (an AF_UNIX listener whose backlog is full) throws: the caller tries again later.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = FamilyArg(env, info[0]);
  std::string host = info[1].As<Napi::String>().Utf8Value();
  int port = info[2].As<Napi::Number>().Int32Value();

  sockaddr_storage ss;
  socklen_t len = SockAddr(env, family, host, port, AI_NUMERICHOST, &ss);

  int fd = NewSocket(family);
  if (fd < 0) throw SysError(env, "socket", errno);
  bool pending = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    // EINTR on a non-blocking connect: the connection goes on in the background, as EINPROGRESS.
    if (errno == EINPROGRESS || errno == EINTR) {
      pending = true;
    } else {
      int err = errno;
      CloseFd(fd);
      throw SysError(env, "connect", err);
    }
  }
  if (!pending) {
    if (!SetBlocking(fd) || (family != AF_UNIX && !SetNoDelay(fd))) {
      int err = errno;
      CloseFd(fd);
      throw SysError(env, "fcntl", err);
    }
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::Number::New(env, fd));
  out.Set(uint32_t(1), Napi::Boolean::New(env, pending));
  return out;
}

// connectResult(fd, tcp): after a pending connect became writable, throws its error if it
// failed; otherwise puts the fd in blocking mode (and TCP_NODELAY for TCP). The caller owns fd.
Napi::Value ConnectResult(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool tcp = info[1].ToBoolean();
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) throw SysError(env, "getsockopt", errno);
  if (err != 0) throw SysError(env, "connect", err);
  if (!SetBlocking(fd)) throw SysError(env, "fcntl", errno);
  if (tcp && !SetNoDelay(fd)) throw SysError(env, "setsockopt", errno);
  return env.Undefined();
}

// fdPoll(fd, writable, timeoutMs) -> whether the fd is readable (or accepts), or writable, within
// timeoutMs (0: now; -1: as long as it takes). Blocks the thread: for checks and ...Sync calls only.
Napi::Value FdPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pollfd p{};
  p.fd = info[0].As<Napi::Number>().Int32Value();
  p.events = info[1].ToBoolean() ? POLLOUT : POLLIN;
  double ms = info[2].As<Napi::Number>().DoubleValue();
  int timeout = ms < 0 ? -1 : ms > 2147483647.0 ? 2147483647 : int(ms);
  int r;
  // EINTR restarts the whole timeout: fine for the uses here (a connect, a readiness check).
  do r = poll(&p, 1, timeout);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw SysError(env, "poll", errno);
  return Napi::Boolean::New(env, r > 0 && (p.revents & (p.events | POLLERR | POLLHUP)) != 0);
}

// resolve(family, host) -> the first address of `host` (getaddrinfo: blocking, for ClientSync).
Napi::Value Resolve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = FamilyArg(env, info[0]);
  std::string host = info[1].As<Napi::String>().Utf8Value();
  sockaddr_storage ss;
  socklen_t len = SockAddr(env, family, host, 0, 0, &ss);
  return AddressOf(env, ss, len).As<Napi::Array>().Get(uint32_t(0));
}

}  // namespace

// ---- FdWatcher ----

void FdWatcher::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "FdWatcher", {
    InstanceMethod<&FdWatcher::Start>("start"),
    InstanceMethod<&FdWatcher::Stop>("stop"),
    InstanceMethod<&FdWatcher::Close>("close"),
  });
  exports.Set("FdWatcher", ctor);
}

// new FdWatcher(fd, onReady(readable, writable))
FdWatcher::FdWatcher(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<FdWatcher>(info), inst_(&GetInstance(info.Env())), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "FdWatcher(fd, onReady)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  poll_ = new uv_poll_t;
  int r = uv_poll_init(inst_->loop, poll_, fd);
  if (r != 0) {
    delete poll_;
    poll_ = nullptr;
    Napi::Error e = Napi::Error::New(env, std::string("cannot watch fd ") + std::to_string(fd) + ": " + uv_strerror(r));
    e.Set("code", Napi::String::New(env, uv_err_name(r)));
    throw e;
  }
  poll_->data = this;
  fd_ = fd;
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  cb_ = Napi::Weak(info[1].As<Napi::Function>());
  async_ctx_ = std::make_unique<Napi::AsyncContext>(env, "multiproc:Listener", info.This().As<Napi::Object>());
  // The environment may end with the watcher open: its handle must be closed before the loop
  // goes (an async cleanup hook in addon.cc waits for that; this one runs before it).
  if (napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok) hook_ = true;
}

FdWatcher::~FdWatcher() {
  CloseNow();
  if (hook_) {
    hook_ = false;
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
  }
}

void FdWatcher::OnEnvCleanup(void* arg) {
  auto* self = static_cast<FdWatcher*>(arg);
  self->hook_ = false;  // Node drops a hook once it ran
  bool open = self->poll_ != nullptr;
  self->CloseNow();
  // Still open: JS never got to close the fd (a Listener, a connect under way). Now nobody will.
  if (open) CloseFd(self->fd_);
}

void FdWatcher::StopNow() {
  if (poll_) {
    uv_poll_stop(poll_);
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  if (held_) {
    held_ = false;
    Unref();
    cb_.Unref();
  }
}

void FdWatcher::CloseNow() {
  if (!poll_) return;
  StopNow();
  poll_->data = nullptr;
  inst_->CloseHandle(reinterpret_cast<uv_handle_t*>(poll_));
  poll_ = nullptr;
}

// start(readable, writable): calls onReady on the loop while the fd is ready for either.
Napi::Value FdWatcher::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!poll_) throw Napi::Error::New(env, "FdWatcher is closed");
  int events = (info[0].ToBoolean() ? UV_READABLE : 0) | (info[1].ToBoolean() ? UV_WRITABLE : 0);
  if (events == 0) {
    StopNow();
    return env.Undefined();
  }
  int r = uv_poll_start(poll_, events, OnPoll);
  if (r != 0) throw Napi::Error::New(env, std::string("cannot watch the fd: ") + uv_strerror(r));
  uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  if (!held_) {
    held_ = true;
    Ref();
    cb_.Ref();
  }
  return env.Undefined();
}

Napi::Value FdWatcher::Stop(const Napi::CallbackInfo& info) {
  StopNow();
  return info.Env().Undefined();
}

Napi::Value FdWatcher::Close(const Napi::CallbackInfo& info) {
  CloseNow();
  return info.Env().Undefined();
}

void FdWatcher::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<FdWatcher*>(handle->data);
  if (!self || self->cb_.IsEmpty()) return;
  // An error on the fd (status < 0): report it as ready, so that JS meets the error itself.
  bool readable = status < 0 || (events & UV_READABLE);
  bool writable = status < 0 || (events & UV_WRITABLE);
  // Plain Node-API calls: a C++ exception must not unwind through libuv.
  napi_env env = self->env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn = nullptr, recv = nullptr, argv[2];
  if (napi_get_reference_value(env, self->cb_, &fn) == napi_ok && fn &&
      napi_get_reference_value(env, static_cast<napi_ref>(*static_cast<Napi::Reference<Napi::Object>*>(self)), &recv) == napi_ok && recv &&
      napi_get_boolean(env, readable, &argv[0]) == napi_ok && napi_get_boolean(env, writable, &argv[1]) == napi_ok) {
    CallFromLoop(env, *self->async_ctx_, recv, fn, 2, argv);
  }
  napi_close_handle_scope(env, scope);
}

void InitSocket(Napi::Env env, Napi::Object exports) {
  FdWatcher::Init(env, exports);
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("connectResult", Napi::Function::New(env, ConnectResult, "connectResult"));
  exports.Set("fdPoll", Napi::Function::New(env, FdPoll, "fdPoll"));
  exports.Set("resolve", Napi::Function::New(env, Resolve, "resolve"));
}

}  // namespace multiproc
