// A message channel over one pipe or socket fd: Python's multiprocessing.connection framing
// (4-byte big-endian length, or -1 then an 8-byte length past 2 GiB), queued non-blocking
// sends, blocking receives for the ...Sync API, and a uv_poll watcher for the async API.
#pragma once
#include <napi.h>
#include <sys/uio.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace multiproc {

struct Instance;

class Channel : public Napi::ObjectWrap<Channel> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Channel(const Napi::CallbackInfo& info);
  ~Channel() override;

  // Environment teardown: closes the fd and the watcher now, without calling into JS.
  void Shutdown();
  // Writes queued output until the kernel refuses more. Returns false if it failed for good.
  bool Flush();
  int fd() const { return fd_; }

 private:
  struct Frame {
    const char* data;
    size_t size;
    bool big;  // lives in big_data_, not in rbuf_
  };
  enum class Got { kFrame, kNone, kEof };

  // JS methods: see lib/native.ts for the contract.
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value RecvInto(const Napi::CallbackInfo& info);
  Napi::Value Poll(const Napi::CallbackInfo& info);
  Napi::Value Watch(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Fileno(const Napi::CallbackInfo& info);
  Napi::Value SetSpin(const Napi::CallbackInfo& info);
  Napi::Value TakeFds(const Napi::CallbackInfo& info);

  // Next whole frame, reading what the kernel has without blocking. Throws on a bad frame.
  Got Next(Napi::Env env, uint64_t max_len, Frame* f);
  // Next frame, blocking up to timeout_ms (-1: forever). kNone means the time ran out.
  Got NextBlocking(Napi::Env env, uint64_t max_len, int64_t timeout_ms, Frame* f);
  void Consume(const Frame& f);
  Napi::Value TakeBuffer(Napi::Env env, const Frame& f);
  ssize_t ReadSome(Napi::Env env);
  ssize_t ReadSome(int* err);
  void CallReadable();
  ssize_t ReadNow(char* dst, size_t room);
  ssize_t WriteNow(iovec* iov, int cnt, const int* fds = nullptr, size_t nfds = 0);
  // Blocks in poll() until the fd is readable or the time is out; meanwhile flushes the
  // environment's queued output. Returns false on timeout.
  bool WaitReadable(Napi::Env env, int64_t deadline_ns);
  void FailFrame(Napi::Env env, const std::string& why);
  void CheckOpen(Napi::Env env, bool want_read, bool want_write);

  void Enqueue(const char* a, size_t alen, const char* b, size_t blen, const std::vector<int>& fds);
  void UpdateWatcher();
  void DropOutput();
  bool CanReadAhead() const;
  void ReleaseBig();
  void StartLoopSpin();
  void StopLoopSpin();
  void AdaptSpin(int64_t* cur, int64_t waited) const;
  static void OnIdle(uv_idle_t* handle);
  void CloseNow();
  static void OnPoll(uv_poll_t* handle, int status, int events);

  Instance* inst_;
  int fd_;
  int fd_flags_ = 0;  // the fd's own status flags, left as they were (see WriteNow)
  bool readable_, writable_, is_socket_;
  bool closed_ = false;     // closed for JS; the fd may linger to flush queued output
  bool fd_closed_ = false;
  bool eof_ = false;
  bool failed_ = false;     // a malformed or oversize frame was seen: the stream is lost
  int write_errno_ = 0;     // first error of a background flush, reported by the next send
  uint64_t max_message_;
  int64_t spin_max_ns_ = 0, spin_cur_ns_ = 0;  // see NextBlocking
  int64_t aspin_cur_ns_ = 0, spin_start_ns_ = 0, spin_until_ns_ = 0;  // see StartLoopSpin
  bool spinning_ = false;
  uv_idle_t* idle_ = nullptr;

  // Read side: bytes in rbuf_[rpos_, rlen_); frames of kBigFrame bytes or more are read
  // straight into a Node Buffer of their exact size (big_).
  std::unique_ptr<char[]> rbuf_;  // kReadBuf bytes once something was read
  size_t rpos_ = 0, rlen_ = 0, frame_len_ = 0;
  char* big_data_ = nullptr;  // a PoolAlloc block of big_cap_ bytes, or big_node_'s memory
  Napi::Reference<Napi::Buffer<char>> big_node_;
  bool big_into_ = false;     // the last large message went to recvInto (see Next)
  size_t big_size_ = 0, big_have_ = 0, big_cap_ = 0;

  // fds received with SCM_RIGHTS, in arrival order, until a decoded message takes them.
  std::deque<int> rx_fds_;

  // Write side: what the kernel did not take yet, in order. A chunk's fds (our duplicates)
  // ride with its first byte.
  struct OutChunk {
    std::vector<char> data;
    std::vector<int> fds;
  };
  std::deque<OutChunk> out_;
  size_t out_off_ = 0;
  size_t out_bytes_ = 0;

  // Async side.
  uv_poll_t* poll_ = nullptr;
  int poll_events_ = 0;
  bool watch_read_ = false;  // receives are pending (JS is called back, the loop kept alive)
  bool armed_ = false;
  bool buffered_only_ = false;  // Next() takes what is buffered and does not read (see Recv)       // async receives were used: keep watching between them, reading ahead
  bool held_ = false;
  Napi::FunctionReference on_readable_;
  std::unique_ptr<Napi::AsyncContext> async_ctx_;
};

// pipe(duplex) -> [fd0, fd1]: a socketpair, or for duplex=false an os.pipe as [read, write].
Napi::Value MakePipe(const Napi::CallbackInfo& info);
// yieldCpu() -> undefined: sched_yield (a busy-poll lets a peer queued on its CPU run).
Napi::Value YieldCpu(const Napi::CallbackInfo& info);
Napi::Value GetCpu(const Napi::CallbackInfo& info);
Napi::Value MakeEventFd(const Napi::CallbackInfo& info);
Napi::Value EventFdSignal(const Napi::CallbackInfo& info);
Napi::Value EventFdDrain(const Napi::CallbackInfo& info);

}  // namespace multiproc
