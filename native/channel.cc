// Channel: framing, queued sends, blocking and event-loop receives over one fd.
// Every syscall is checked and retried on EINTR; EAGAIN means "not now", never an error.
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "bufpool.h"
#include "instance.h"

namespace multiproc {

namespace {

constexpr size_t kReadBuf = 128 * 1024;
constexpr size_t kBigFrame = 32 * 1024;
constexpr uint64_t kSmallFormMax = 0x7fffffff;  // Python switches to the 8-byte form above this
constexpr size_t kMaxFdsPerRead = 253;            // SCM_MAX_FD: the most one sendmsg may carry

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// An Error shaped like Node's own system errors: message, code, errno, syscall.
Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err) {
  const char* code = "EIO";
  switch (err) {
    case EPIPE: code = "EPIPE"; break;
    case ECONNRESET: code = "ECONNRESET"; break;
    case EBADF: code = "EBADF"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENOTSOCK: code = "ENOTSOCK"; break;
    case EMFILE: code = "EMFILE"; break;
    case ENFILE: code = "ENFILE"; break;
    case ENOMEM: code = "ENOMEM"; break;
    case ENOBUFS: code = "ENOBUFS"; break;
    case EPERM: code = "EPERM"; break;
    default: break;
  }
  std::string msg = std::string(syscall) + ": " + strerror(err) + " (" + code + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Error CodedError(Napi::Env env, const std::string& msg, const char* code) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

void PutHeader(char* hdr, size_t* hlen, uint64_t n) {
  if (n <= kSmallFormMax) {
    hdr[0] = char(n >> 24); hdr[1] = char(n >> 16); hdr[2] = char(n >> 8); hdr[3] = char(n);
    *hlen = 4;
    return;
  }
  memset(hdr, 0xff, 4);  // -1 announces the 8-byte length
  for (int i = 0; i < 8; i++) hdr[4 + i] = char(n >> (56 - 8 * i));
  *hlen = 12;
}

uint32_t Be32(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t(u[0]) << 24) | (uint32_t(u[1]) << 16) | (uint32_t(u[2]) << 8) | u[3];
}

int64_t TimeoutArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) return -1;
  double ms = info[i].As<Napi::Number>().DoubleValue();
  if (ms < 0 || ms != ms) return -1;
  return int64_t(ms);
}

}  // namespace

void Channel::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "Channel", {
    InstanceMethod<&Channel::Send>("send"),
    InstanceMethod<&Channel::Recv>("recv"),
    InstanceMethod<&Channel::RecvInto>("recvInto"),
    InstanceMethod<&Channel::Poll>("poll"),
    InstanceMethod<&Channel::Watch>("watch"),
    InstanceMethod<&Channel::Close>("close"),
    InstanceMethod<&Channel::Pending>("pending"),
    InstanceMethod<&Channel::Fileno>("fileno"),
    InstanceMethod<&Channel::SetSpin>("setSpin"),
    InstanceMethod<&Channel::TakeFds>("takeFds"),
  });
  GetInstance(env).channel_ctor = Napi::Persistent(ctor);
  exports.Set("Channel", ctor);
  exports.Set("pipe", Napi::Function::New(env, MakePipe, "pipe"));
  exports.Set("yieldCpu", Napi::Function::New(env, YieldCpu, "yieldCpu"));
  exports.Set("getcpu", Napi::Function::New(env, GetCpu, "getcpu"));
  exports.Set("eventfd", Napi::Function::New(env, MakeEventFd, "eventfd"));
  exports.Set("eventfdSignal", Napi::Function::New(env, EventFdSignal, "eventfdSignal"));
  exports.Set("eventfdDrain", Napi::Function::New(env, EventFdDrain, "eventfdDrain"));
}

// new Channel(fd, readable, writable, maxMessageBytes, onReadable)
Channel::Channel(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Channel>(info), inst_(&GetInstance(info.Env())) {
  Napi::Env env = info.Env();
  fd_ = -1;
  if (info.Length() < 5 || !info[0].IsNumber() || !info[4].IsFunction())
    throw Napi::TypeError::New(env, "Channel(fd, readable, writable, maxMessageBytes, onReadable)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  readable_ = info[1].ToBoolean();
  writable_ = info[2].ToBoolean();
  max_message_ = uint64_t(info[3].As<Napi::Number>().DoubleValue());

  mode_t mode;
#ifdef STATX_TYPE
  // statx (glibc 2.28) rather than fstat (versioned 2.33 in newer glibc): the prebuilt binary
  // then loads on every glibc that Node 20 itself supports.
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, &stx) != 0) throw ErrnoError(env, "statx", errno);
  mode = stx.stx_mode;
#else
  struct stat st;
  if (fstat(fd, &st) != 0) throw ErrnoError(env, "fstat", errno);
  mode = st.st_mode;
#endif
  is_socket_ = S_ISSOCK(mode);
  if (!is_socket_ && !S_ISFIFO(mode))
    throw CodedError(env, "fd " + std::to_string(fd) + " is not a pipe or a socket", "ERR_MULTIPROC_FD_TYPE");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) throw ErrnoError(env, "fcntl", errno);
  int acc = fl & O_ACCMODE;
  if (readable_ && acc == O_WRONLY)
    throw CodedError(env, "fd " + std::to_string(fd) + " is the write end of a pipe; it cannot be readable", "ERR_MULTIPROC_FD_MODE");
  if (writable_ && acc == O_RDONLY)
    throw CodedError(env, "fd " + std::to_string(fd) + " is the read end of a pipe; it cannot be writable", "ERR_MULTIPROC_FD_MODE");
  fd_flags_ = fl;
  fd_ = fd;
  on_readable_ = Napi::Weak(info[4].As<Napi::Function>());
  async_ctx_ = std::make_unique<Napi::AsyncContext>(env, "multiproc:Connection", info.This().As<Napi::Object>());
  inst_->live.insert(this);
}

Channel::~Channel() {
  CloseNow();
  inst_->live.erase(this);
}

void Channel::DropOutput() {
  for (auto& c : out_)
    for (int fd : c.fds) close(fd);
  out_.clear();
  out_off_ = out_bytes_ = 0;
}

void Channel::Shutdown() {
  DropOutput();
  watch_read_ = false;
  CloseNow();
  inst_->live.erase(this);
}

void Channel::CheckOpen(Napi::Env env, bool want_read, bool want_write) {
  if (closed_) throw CodedError(env, "channel is closed", "ERR_MULTIPROC_CLOSED");
  if (want_read && !readable_) throw CodedError(env, "channel is not readable", "ERR_MULTIPROC_NOT_READABLE");
  if (want_write && !writable_) throw CodedError(env, "channel is not writable", "ERR_MULTIPROC_NOT_WRITABLE");
  if (want_read && failed_) throw CodedError(env, "channel lost its framing after a bad frame", "ERR_MULTIPROC_BAD_FRAME");
}

// ---- non-blocking I/O on a blocking fd ----
//
// O_NONBLOCK belongs to the open file description, which every process the fd was passed to
// shares: setting it would break a peer that expects a blocking fd (CPython's Connection
// raises BlockingIOError). So the fd keeps its flags; sockets get MSG_DONTWAIT per call, and
// pipes are polled before a read and switched to non-blocking only for the span of a write.

ssize_t Channel::WriteNow(iovec* iov, int cnt, const int* fds, size_t nfds) {
  if (is_socket_) {
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = size_t(cnt);
    std::vector<char> control;
    if (nfds) {
      control.assign(CMSG_SPACE(sizeof(int) * nfds), 0);
      mh.msg_control = control.data();
      mh.msg_controllen = control.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    // MSG_NOSIGNAL: a closed peer gives EPIPE, not SIGPIPE, also where SIGPIPE is not ignored.
    return sendmsg(fd_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  if (fd_flags_ & O_NONBLOCK) return writev(fd_, iov, cnt);
  if (fcntl(fd_, F_SETFL, fd_flags_ | O_NONBLOCK) != 0) return -1;
  ssize_t n = writev(fd_, iov, cnt);
  int saved = errno;
  if (fcntl(fd_, F_SETFL, fd_flags_) != 0 && n >= 0) return -1;
  errno = saved;
  return n;
}

ssize_t Channel::ReadNow(char* dst, size_t room) {
  if (is_socket_) {
    iovec iov = {dst, room};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
#ifdef MSG_CMSG_CLOEXEC
    ssize_t n = recvmsg(fd_, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
#else
    ssize_t n = recvmsg(fd_, &mh, MSG_DONTWAIT);
#endif
    if (n < 0) return n;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
#ifndef MSG_CMSG_CLOEXEC
        fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
        rx_fds_.push_back(fd);
      }
    }
    // More fds than fit were sent with one read: the kernel closed the rest. A message that
    // needs them fails in TakeFds with a clear error rather than with the wrong fds.
    if (mh.msg_flags & MSG_CTRUNC) rx_fds_.push_back(-1);
    return n;
  }
  if (!(fd_flags_ & O_NONBLOCK)) {
    pollfd p = {fd_, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r < 0) return -1;
    if (r == 0) {
      errno = EAGAIN;
      return -1;
    }
  }
  return read(fd_, dst, room);
}

// ---- sending ----

// send(buf, offset, length) -> bytes still queued
Napi::Value Channel::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, false, true);
  if (write_errno_) throw ErrnoError(env, "write", write_errno_);
  auto arr = info[0].As<Napi::TypedArray>();
  size_t off = info[1].As<Napi::Number>().Int64Value();
  size_t len = info[2].As<Napi::Number>().Int64Value();
  const char* data = static_cast<const char*>(arr.ArrayBuffer().Data()) + arr.ByteOffset() + off;
  std::vector<int> fds;
  if (info.Length() > 3 && info[3].IsArray()) {
    Napi::Array a = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) fds.push_back(a.Get(i).As<Napi::Number>().Int32Value());
    if (!fds.empty() && !is_socket_)
      throw CodedError(env, "file descriptors can travel only over a socket (a duplex Pipe), not over an OS pipe", "ERR_MULTIPROC_FD_PASSING");
    if (fds.size() > kMaxFdsPerRead)
      throw CodedError(env, "one message can carry at most " + std::to_string(kMaxFdsPerRead) + " file descriptors", "ERR_MULTIPROC_FD_PASSING");
  }
  char hdr[12];
  size_t hlen;
  PutHeader(hdr, &hlen, len);
  if (!out_.empty()) {
    Enqueue(hdr, hlen, data, len, fds);
    return Napi::Number::New(env, double(out_bytes_));
  }
  iovec iov[2] = {{hdr, hlen}, {const_cast<char*>(data), len}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = len ? 2 : 1;
  size_t total = hlen + len, done = 0;
  while (done < total) {
    // The fds ride with the first byte that goes out.
    ssize_t n = done == 0 ? WriteNow(mh.msg_iov, int(mh.msg_iovlen), fds.data(), fds.size())
                          : WriteNow(mh.msg_iov, int(mh.msg_iovlen));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw ErrnoError(env, "write", errno);
    }
    done += size_t(n);
    // Advance the iovecs past what was written.
    while (mh.msg_iovlen && size_t(n) >= mh.msg_iov[0].iov_len) {
      n -= ssize_t(mh.msg_iov[0].iov_len);
      mh.msg_iov++;
      mh.msg_iovlen--;
    }
    if (mh.msg_iovlen) {
      mh.msg_iov[0].iov_base = static_cast<char*>(mh.msg_iov[0].iov_base) + n;
      mh.msg_iov[0].iov_len -= size_t(n);
    }
  }
  if (done < total) {
    size_t hrest = done < hlen ? hlen - done : 0;
    size_t dskip = done > hlen ? done - hlen : 0;
    Enqueue(hdr + (hlen - hrest), hrest, data + dskip, len - dskip, done == 0 ? fds : std::vector<int>());
  }
  return Napi::Number::New(env, double(out_bytes_));
}

void Channel::Enqueue(const char* a, size_t alen, const char* b, size_t blen, const std::vector<int>& fds) {
  OutChunk chunk;
  // Our own duplicates: the caller may close its fds as soon as send returns.
  for (int fd : fds) {
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
      int err = errno;
      for (int x : chunk.fds) close(x);
      throw ErrnoError(Env(), "fcntl(F_DUPFD_CLOEXEC)", err);
    }
    chunk.fds.push_back(d);
  }
  chunk.data.reserve(alen + blen);
  chunk.data.insert(chunk.data.end(), a, a + alen);
  chunk.data.insert(chunk.data.end(), b, b + blen);
  out_bytes_ += alen + blen;
  out_.push_back(std::move(chunk));
  inst_->pending_writers.insert(this);
  UpdateWatcher();
}

bool Channel::Flush() {
  while (!out_.empty()) {
    iovec iov[16];
    int cnt = 0;
    size_t off = out_off_;
    // One sendmsg carries one set of fds: a batch stops before the next chunk that has some.
    for (auto it = out_.begin(); it != out_.end() && cnt < 16; ++it, ++cnt) {
      if (cnt > 0 && !it->fds.empty()) break;
      iov[cnt].iov_base = it->data.data() + off;
      iov[cnt].iov_len = it->data.size() - off;
      off = 0;
    }
    std::vector<int>& fds = out_.front().fds;
    ssize_t n = WriteNow(iov, cnt, fds.data(), fds.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      write_errno_ = errno;
      DropOutput();
      break;
    }
    for (int fd : fds) close(fd);  // sent: the peer holds its own copies now
    fds.clear();
    out_bytes_ -= size_t(n);
    size_t left = size_t(n);
    while (left) {
      size_t avail = out_.front().data.size() - out_off_;
      if (left >= avail) {
        left -= avail;
        out_.pop_front();
        out_off_ = 0;
      } else {
        out_off_ += left;
        left = 0;
      }
    }
  }
  if (out_.empty()) inst_->pending_writers.erase(this);
  UpdateWatcher();
  if (closed_ && out_.empty()) CloseNow();
  return write_errno_ == 0;
}

// ---- receiving ----

ssize_t Channel::ReadSome(Napi::Env env) {
  int err = 0;
  ssize_t n = ReadSome(&err);
  if (err) throw ErrnoError(env, "read", err);
  return n;
}

// Reads what fits: n > 0 bytes, 0 at EOF, -1 when nothing is there (or `*err` on an error).
// Touches no JS, so the loop's callbacks can use it while their environment is going away.
ssize_t Channel::ReadSome(int* err) {
  char* dst;
  size_t room;
  if (big_data_) {
    dst = big_data_ + big_have_;
    room = big_size_ - big_have_;
  } else {
    if (rpos_ == rlen_) rpos_ = rlen_ = 0;
    // Allocated on first use and never zero-filled: a fresh, touched 128 KiB costs page faults
    // that made each readable Connection half a millisecond dearer.
    if (!rbuf_) rbuf_.reset(new char[kReadBuf]);
    if (kReadBuf - rlen_ < 4096 && rpos_ > 0) {
      memmove(rbuf_.get(), rbuf_.get() + rpos_, rlen_ - rpos_);
      rlen_ -= rpos_;
      rpos_ = 0;
    }
    dst = rbuf_.get() + rlen_;
    room = kReadBuf - rlen_;
  }
  if (room == 0) return -1;  // nothing fits now: not an EOF
  for (;;) {
    ssize_t n = ReadNow(dst, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
      if (errno == ECONNRESET) return 0;  // the peer died with unread data: same as EOF for us
      *err = errno;
      return -1;
    }
    if (big_data_) big_have_ += size_t(n);
    else rlen_ += size_t(n);
    return n;
  }
}

void Channel::FailFrame(Napi::Env env, const std::string& why) {
  failed_ = true;
  throw CodedError(env, why, "ERR_MULTIPROC_BAD_FRAME");
}

Channel::Got Channel::Next(Napi::Env env, uint64_t max_len, Frame* f) {
  for (;;) {
    if (big_data_) {
      if (big_size_ > max_len)
        FailFrame(env, "message of " + std::to_string(big_size_) + " bytes is longer than the " +
                       std::to_string(max_len) + " bytes allowed");
      if (big_have_ == big_size_) {
        *f = {big_data_, big_size_, true};
        return Got::kFrame;
      }
    } else {
      size_t avail = rlen_ - rpos_;
      if (avail >= 4) {
        const char* p = rbuf_.get() + rpos_;
        int32_t s32 = int32_t(Be32(p));
        uint64_t size = 0;
        size_t hlen = 4;
        bool have_size = true;
        if (s32 == -1) {
          hlen = 12;
          if (avail < 12) have_size = false;
          else size = (uint64_t(Be32(p + 4)) << 32) | Be32(p + 8);
        } else if (s32 < 0) {
          FailFrame(env, "malformed frame: negative length " + std::to_string(s32));
        } else {
          size = uint64_t(s32);
        }
        if (have_size) {
          if (size > max_len)
            FailFrame(env, "message of " + std::to_string(size) + " bytes is longer than the " +
                           std::to_string(max_len) + " bytes allowed");
          if (avail >= hlen + size) {
            *f = {p + hlen, size, false};
            frame_len_ = hlen + size;
            return Got::kFrame;
          }
          if (size >= kBigFrame) {
            // Allocated only now that the length passed max_len: a hostile prefix costs nothing.
            // Where it goes depends on who took the last large message: recvBytesInto copies it
            // out, so a recycled block serves (its pages stay mapped); recvBytes hands the memory
            // itself to JS, so a Node Buffer serves (V8 accounts for it and frees it in time).
            if (big_into_) {
              big_data_ = PoolAlloc(size, &big_cap_);
            } else {
              try {
                Napi::Buffer<char> b = Napi::Buffer<char>::New(env, size);
                big_node_ = Napi::Persistent(b);
                big_data_ = b.Data();
              } catch (const Napi::Error&) {
                big_data_ = nullptr;
              }
            }
            if (!big_data_) FailFrame(env, "cannot allocate memory for a message of " + std::to_string(size) + " bytes");
            big_size_ = size;
            big_have_ = std::min<size_t>(avail - hlen, size);
            memcpy(big_data_, p + hlen, big_have_);
            rpos_ += hlen + big_have_;
            continue;
          }
        }
      }
    }
    if (eof_) return Got::kEof;
    if (buffered_only_) return Got::kNone;
    ssize_t n = ReadSome(env);
    if (n > 0) continue;
    if (n == 0) {
      eof_ = true;
      continue;  // a frame may still be complete in the buffer
    }
    return Got::kNone;
  }
}

void Channel::Consume(const Frame& f) {
  if (f.big) {
    ReleaseBig();  // (nothing left if TakeBuffer handed it to JS)
  } else {
    rpos_ += frame_len_;
  }
  if (armed_ && !watch_read_) UpdateWatcher();  // room again: resume reading ahead
}

Napi::Value Channel::TakeBuffer(Napi::Env env, const Frame& f) {
  Napi::Value v;
  if (f.big) {
    if (!big_node_.IsEmpty()) {
      v = big_node_.Value();  // the Buffer itself goes to JS: nothing is left to release
      big_node_.Reset();
      big_data_ = nullptr;
    } else {
      v = Napi::Buffer<char>::Copy(env, f.data, f.size);
    }
    big_into_ = false;
  } else {
    v = Napi::Buffer<char>::Copy(env, f.data, f.size);
  }
  Consume(f);
  return v;
}

bool Channel::WaitReadable(Napi::Env env, int64_t deadline_ns) {
  std::vector<pollfd> fds;
  std::vector<Channel*> writers;
  for (;;) {
    fds.clear();
    writers.clear();
    fds.push_back({fd_, POLLIN, 0});
    for (Channel* w : inst_->pending_writers) {
      writers.push_back(w);
      fds.push_back({w->fd_, POLLOUT, 0});
    }
    int timeout = -1;
    if (deadline_ns >= 0) {
      int64_t left = deadline_ns - NowNs();
      if (left <= 0) return false;
      timeout = int((left + 999999) / 1000000);
    }
    int r = poll(fds.data(), fds.size(), timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError(env, "poll", errno);
    }
    for (size_t i = 0; i < writers.size(); i++)
      if (fds[i + 1].revents) writers[i]->Flush();
    if (fds[0].revents) return true;
    if (r == 0 && deadline_ns >= 0 && NowNs() >= deadline_ns) return false;
  }
}

Channel::Got Channel::NextBlocking(Napi::Env env, uint64_t max_len, int64_t timeout_ms, Frame* f) {
  Got g = Next(env, max_len, f);
  if (g != Got::kNone || timeout_ms == 0) return g;
  int64_t start = NowNs();
  int64_t deadline = timeout_ms < 0 ? -1 : start + timeout_ms * 1000000;
  // A short spin first: when the peer answers within it, this saves a kernel wake-up (~12 us,
  // often more on a VM). The spin adapts (AdaptSpin): a peer that is slow to answer, or one that
  // shares our CPU and cannot answer while we spin, soon costs little CPU.
  if (spin_cur_ns_ > 0) {
    int64_t spin_end = start + spin_cur_ns_;
    if (deadline >= 0) spin_end = std::min(spin_end, deadline);
    for (int64_t t = start; t < spin_end; t = NowNs()) {
      g = Next(env, max_len, f);
      if (g != Got::kNone) return g;
      // The peer may be waiting for our CPU: a socket's wake-up is a "sync" one, which puts the
      // woken process on its waker's CPU. Let it run; sched_yield returns at once when nothing
      // else is runnable here.
      sched_yield();
    }
  }
  for (;;) {
    if (!WaitReadable(env, deadline)) return Got::kNone;
    g = Next(env, max_len, f);
    if (g != Got::kNone) {
      if (spin_max_ns_ > 0) AdaptSpin(&spin_cur_ns_, NowNs() - start);
      return g;
    }
  }
}

// An async receive's first try: once the watcher is armed it reads ahead, so when the buffer
// holds no whole message the socket very likely holds none either; the loop's epoll_wait tells
// for sure (level-triggered) and saves a read() that would fail with EAGAIN.
struct BufferedOnly {
  bool& flag;
  BufferedOnly(bool& f, bool on) : flag(f) { flag = on; }
  ~BufferedOnly() { flag = false; }
};

// recv(timeoutMs, maxLength, first) -> Buffer | null (nothing within the time) | undefined (EOF)
Napi::Value Channel::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, true, false);
  int64_t timeout = TimeoutArg(info, 0);
  uint64_t max_len = max_message_;
  if (info.Length() > 1 && info[1].IsNumber())
    max_len = std::min<uint64_t>(max_len, uint64_t(info[1].As<Napi::Number>().DoubleValue()));
  BufferedOnly only(buffered_only_, armed_ && info.Length() > 2 && info[2].ToBoolean());
  Frame f;
  switch (NextBlocking(env, max_len, timeout, &f)) {
    case Got::kFrame: return TakeBuffer(env, f);
    case Got::kNone: return env.Null();
    case Got::kEof: return env.Undefined();
  }
  return env.Undefined();
}

// recvInto(target, offset, timeoutMs, first) -> bytes copied | Buffer (did not fit) | null | undefined
Napi::Value Channel::RecvInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, true, false);
  BufferedOnly only(buffered_only_, armed_ && info.Length() > 3 && info[3].ToBoolean());
  auto arr = info[0].As<Napi::TypedArray>();
  size_t off = size_t(info[1].As<Napi::Number>().Int64Value());
  int64_t timeout = TimeoutArg(info, 2);
  char* base = static_cast<char*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  size_t room = arr.ByteLength() - off;
  Frame f;
  switch (NextBlocking(env, max_message_, timeout, &f)) {
    case Got::kFrame:
      if (f.size > room) return TakeBuffer(env, f);
      memcpy(base + off, f.data, f.size);
      if (f.big) big_into_ = true;
      Consume(f);
      return Napi::Number::New(env, double(f.size));
    case Got::kNone: return env.Null();
    case Got::kEof: return env.Undefined();
  }
  return env.Undefined();
}

// poll(timeoutMs) -> true when a recv would not block (a message, a partial one, or EOF)
Napi::Value Channel::Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, true, false);
  int64_t timeout = TimeoutArg(info, 0);
  Frame f;
  Got g = NextBlocking(env, max_message_, timeout, &f);
  return Napi::Boolean::New(env, g != Got::kNone);
}

// watch(on): whether receives are pending, so that the loop calls onReadable (and stays alive).
// The first watch(true) also arms the watcher for good: between receives it reads ahead into the
// buffer instead of being stopped and started again (two epoll_ctl calls per message saved).
Napi::Value Channel::Watch(const Napi::CallbackInfo& info) {
  bool on = info[0].ToBoolean();
  if (closed_ && on) CheckOpen(info.Env(), true, false);
  watch_read_ = on;
  if (on) armed_ = true;
  UpdateWatcher();
  if (on) {
    StartLoopSpin();
  } else {
    StopLoopSpin();
    spin_start_ns_ = 0;
  }
  return info.Env().Undefined();
}

Napi::Value Channel::Close(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  closed_ = true;
  watch_read_ = false;
  ReleaseBig();
  // Queued output lingers until written (or the peer goes), as a socket's end() would.
  if (out_.empty()) CloseNow();
  else UpdateWatcher();
  return info.Env().Undefined();
}

Napi::Value Channel::Pending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(out_bytes_));
}

Napi::Value Channel::Fileno(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_closed_ ? -1 : fd_);
}

// takeFds(n) -> the next n fds received with SCM_RIGHTS; the caller owns them.
Napi::Value Channel::TakeFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = size_t(info[0].As<Napi::Number>().Uint32Value());
  bool lost = rx_fds_.size() < n;
  for (size_t i = 0; i < n && i < rx_fds_.size(); i++) lost = lost || rx_fds_[i] < 0;
  if (lost)
    throw CodedError(env, "a message announced " + std::to_string(n) + " file descriptors that did not arrive (" +
                              std::to_string(rx_fds_.size()) + " pending)", "ERR_MULTIPROC_FD_PASSING");
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    a.Set(uint32_t(i), rx_fds_.front());
    rx_fds_.pop_front();
  }
  return a;
}

Napi::Value Channel::SetSpin(const Napi::CallbackInfo& info) {
  double us = info[0].As<Napi::Number>().DoubleValue();
  spin_max_ns_ = spin_cur_ns_ = aspin_cur_ns_ = us > 0 ? int64_t(us * 1000) : 0;
  return info.Env().Undefined();
}

// ---- the event-loop side ----

// After a receive that had to park, the message came `waited` ns after the receive began. Had
// it come within the longest spin, spinning that long would have caught it: spin fully again.
// (Judging by the outcome alone would let two peers settle into both parking: each then waits
// for the other's wake-up and no spin ever catches anything.) Otherwise halve the spin, down to
// spinMs/16: a slow peer, or one on our CPU that cannot answer while we spin.
void Channel::AdaptSpin(int64_t* cur, int64_t waited) const {
  *cur = waited <= spin_max_ns_ ? spin_max_ns_ : std::max(spin_max_ns_ / 16, *cur / 2);
}

// The async twin of the blocking receive's spin. It never blocks the loop: an idle handle only
// makes each loop turn poll without sleeping, so for up to the (adaptive) spin time a reply is
// picked up by the next epoll_wait(0) instead of after a kernel wake-up, and timers and other
// I/O run meanwhile. Unref'd: it never keeps the process alive on its own.
void Channel::StartLoopSpin() {
  if (aspin_cur_ns_ <= 0 || fd_closed_ || spinning_) return;
  if (!idle_) {
    idle_ = new uv_idle_t;
    if (uv_idle_init(inst_->loop, idle_) != 0) {
      delete idle_;
      idle_ = nullptr;
      return;
    }
    idle_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
  }
  spin_start_ns_ = NowNs();
  spin_until_ns_ = spin_start_ns_ + aspin_cur_ns_;
  if (uv_idle_start(idle_, OnIdle) == 0) spinning_ = true;
}

void Channel::StopLoopSpin() {
  if (!spinning_) return;
  spinning_ = false;
  uv_idle_stop(idle_);
}

void Channel::OnIdle(uv_idle_t* handle) {
  auto* self = static_cast<Channel*>(handle->data);
  if (self && NowNs() >= self->spin_until_ns_) {
    self->StopLoopSpin();
    return;
  }
  // As in the blocking spin: a peer on our CPU gets to run (and answer) while we spin.
  sched_yield();
}

// Drops the frame being assembled (or what is left of one that was taken).
void Channel::ReleaseBig() {
  if (!big_node_.IsEmpty()) big_node_.Reset();
  else PoolFree(big_data_, big_cap_);
  big_data_ = nullptr;
  big_size_ = big_have_ = 0;
}

bool Channel::CanReadAhead() const {
  if (!armed_ || eof_ || failed_ || closed_) return false;
  if (big_data_) return big_have_ < big_size_;
  return rlen_ < kReadBuf || rpos_ > 0;
}

void Channel::UpdateWatcher() {
  if (fd_closed_) return;
  bool want_read = readable_ && !closed_ && (watch_read_ || CanReadAhead());
  int want = (want_read ? UV_READABLE : 0) | (out_.empty() ? 0 : UV_WRITABLE);
  if (want && !poll_) {
    poll_ = new uv_poll_t;
    int r = uv_poll_init(inst_->loop, poll_, fd_);
    if (r != 0) {
      delete poll_;
      poll_ = nullptr;
      Napi::Env env = Env();
      throw CodedError(env, std::string("cannot watch fd: ") + uv_strerror(r), "ERR_MULTIPROC_WATCH");
    }
    poll_->data = this;
  }
  if (poll_ && want != poll_events_) {
    int r = want ? uv_poll_start(poll_, want, OnPoll) : uv_poll_stop(poll_);
    if (r == 0) poll_events_ = want;
  }
  // Only a pending receive or queued output keeps the loop alive, and the JS object and its
  // callback from being collected; reading ahead does not.
  bool hold = watch_read_ || !out_.empty();
  if (poll_) {
    if (hold) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    else uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  if (hold != held_) {
    held_ = hold;
    if (hold) {
      Ref();
      on_readable_.Ref();
    } else {
      Unref();
      on_readable_.Unref();
    }
  }
}

void Channel::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<Channel*>(handle->data);
  if (!self) return;
  // An error on the fd: let the read and write paths meet it and report it.
  if (status < 0) events = self->poll_events_;
  if ((events & UV_WRITABLE) && !self->out_.empty()) self->Flush();
  if ((events & UV_READABLE) && !self->watch_read_ && !self->fd_closed_) {
    // Nobody waits: read ahead what fits (it stops the watcher once the buffer is full or at EOF).
    int err = 0;
    if (self->ReadSome(&err) == 0) self->eof_ = true;
    if (err) self->armed_ = false;  // the next receive meets the error itself
    self->UpdateWatcher();
    return;
  }
  if ((events & UV_READABLE) && self->watch_read_ && self->spin_start_ns_) {
    // A receive was waiting: adapt the loop spin to how long its message took (see AdaptSpin).
    self->StopLoopSpin();
    self->AdaptSpin(&self->aspin_cur_ns_, NowNs() - self->spin_start_ns_);
    self->spin_start_ns_ = 0;
  }
  if ((events & UV_READABLE) && self->watch_read_ && !self->on_readable_.IsEmpty()) self->CallReadable();
}

// Calls the JS side from the loop with plain Node-API calls: node-addon-api's wrappers treat a
// failure as fatal, and calls do fail while a worker thread's environment is being torn down.
void Channel::CallReadable() {
  napi_env env = Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn = nullptr, recv = nullptr, result;
  if (napi_get_reference_value(env, on_readable_, &fn) == napi_ok && fn &&
      napi_get_reference_value(env, static_cast<napi_ref>(*static_cast<Napi::Reference<Napi::Object>*>(this)), &recv) == napi_ok && recv) {
    napi_status st = napi_make_callback(env, *async_ctx_, recv, fn, 0, nullptr, &result);
    if (st == napi_pending_exception) {
      // The JS side only settles promises and does not throw; an Error here is a bug of ours
      // and belongs to the process's uncaughtException path. Anything else is the environment
      // stopping (terminated worker), where there is nobody left to tell.
      napi_value exc;
      bool is_error = false;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && napi_is_error(env, exc, &is_error) == napi_ok && is_error)
        napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

void Channel::CloseNow() {
  if (fd_closed_) return;
  fd_closed_ = true;
  inst_->pending_writers.erase(this);
  if (poll_) {
    inst_->CloseHandle(reinterpret_cast<uv_handle_t*>(poll_));
    poll_ = nullptr;
    poll_events_ = 0;
  }
  if (idle_) {
    spinning_ = false;
    inst_->CloseHandle(reinterpret_cast<uv_handle_t*>(idle_));
    idle_ = nullptr;
  }
  for (int fd : rx_fds_)
    if (fd >= 0) close(fd);
  rx_fds_.clear();
  if (big_node_.IsEmpty()) PoolFree(big_data_, big_cap_);  // a Node Buffer goes with the reference
  big_data_ = nullptr;
  // close() must not be retried on EINTR on Linux: the fd is released either way.
  if (fd_ >= 0) close(fd_);
  if (held_) {
    held_ = false;
    Unref();
    if (!on_readable_.IsEmpty()) on_readable_.Unref();
  }
}

// yieldCpu(): sched_yield, for a JS busy-poll that has waited a while (as a receive's spin yields).
Napi::Value YieldCpu(const Napi::CallbackInfo& info) {
  sched_yield();  // cannot fail on Linux
  return info.Env().Undefined();
}

// getcpu() -> the CPU this thread runs on now (-1 if unknown): a spinner skips its spin when the
// peer it waits for last ran on this CPU, since it would only keep that peer from running.
Napi::Value GetCpu(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sched_getcpu());
}

// eventfd() -> a non-blocking eventfd: a doorbell whose wake-up is not a "sync" one (a socket's
// or pipe's is, which makes the kernel run the woken process on the waker's CPU).
Napi::Value MakeEventFd(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw ErrnoError(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

// One 8-byte read or write of an eventfd (`what` names the call for errors); the bytes moved, or
// 0 when it would block: at count 0 for a read, at its maximum for a write (readable anyway).
ssize_t EventFdIo(const Napi::CallbackInfo& info, const char* what, bool write_it) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, std::string(what) + "(fd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t n = 1;
  ssize_t r;
  do r = write_it ? write(fd, &n, sizeof n) : read(fd, &n, sizeof n);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EAGAIN) throw ErrnoError(env, write_it ? "write" : "read", errno);
  return r < 0 ? 0 : r;
}

// eventfdSignal(fd): adds 1 to its count (readable from then on).
Napi::Value EventFdSignal(const Napi::CallbackInfo& info) {
  EventFdIo(info, "eventfdSignal", true);
  return info.Env().Undefined();
}

// eventfdDrain(fd) -> whether it had been signalled (its count is 0 again).
Napi::Value EventFdDrain(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), EventFdIo(info, "eventfdDrain", false) == 8);
}

Napi::Value MakePipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool duplex = info.Length() < 1 || info[0].ToBoolean();
  int fds[2];
#ifdef __linux__
  int r = duplex ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) : pipe2(fds, O_CLOEXEC);
#else
  int r = duplex ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds);
  if (r == 0) for (int fd : fds) fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  if (r != 0) throw ErrnoError(env, duplex ? "socketpair" : "pipe", errno);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(uint32_t(0), fds[0]);
  a.Set(uint32_t(1), fds[1]);
  return a;
}

}  // namespace multiproc
