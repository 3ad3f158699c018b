#include "lesseg/engine/store.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <thread>

#include <c10/util/Exception.h>

namespace lesseg {

// Wire format: every message is a 4-byte big-endian length and a payload. A request payload is one
// op byte and its fields; integers are 8-byte big-endian, byte strings a 4-byte length and bytes.
namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

enum Op : uint8_t { kSet = 1, kGet, kAdd, kCompareSet, kDelete, kCheck, kNumKeys, kWait, kHello, kPing, kHealth, kBye };
enum Status : uint8_t { kOk = 0, kTimeout = 1, kRankFailed = 2 };

class Writer {
 public:
  Writer& u8(uint8_t v) { out_.push_back(v); return *this; }
  Writer& u32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(v >> s));
    return *this;
  }
  Writer& i64(int64_t v) {
    for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> s));
    return *this;
  }
  Writer& bytes(const uint8_t* data, size_t n) {
    u32(static_cast<uint32_t>(n));
    out_.insert(out_.end(), data, data + n);
    return *this;
  }
  Writer& bytes(const Bytes& v) { return bytes(v.data(), v.size()); }
  Writer& str(const std::string& s) { return bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
  Bytes take() { return std::move(out_); }

 private:
  Bytes out_;
};

class Reader {
 public:
  explicit Reader(const Bytes& in) : in_(in) {}
  uint8_t u8() { need(1); return in_[pos_++]; }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | in_[pos_++];
    return v;
  }
  int64_t i64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | in_[pos_++];
    return static_cast<int64_t>(v);
  }
  Bytes bytes() {
    uint32_t n = u32();
    need(n);
    Bytes v(in_.begin() + pos_, in_.begin() + pos_ + n);
    pos_ += n;
    return v;
  }
  std::string str() {
    Bytes b = bytes();
    return std::string(b.begin(), b.end());
  }

 private:
  void need(size_t n) {
    if (pos_ + n > in_.size()) throw std::runtime_error("malformed store message");
  }
  const Bytes& in_;
  size_t pos_ = 0;
};

bool send_all(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    data += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool recv_all(int fd, uint8_t* data, size_t n) {
  while (n > 0) {
    ssize_t k = ::recv(fd, data, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    data += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

constexpr uint32_t kMaxMessage = 256u << 20;

bool send_message(int fd, const Bytes& payload) {
  Bytes framed = Writer().u32(static_cast<uint32_t>(payload.size())).take();
  framed.insert(framed.end(), payload.begin(), payload.end());
  return send_all(fd, framed.data(), framed.size());
}

bool recv_message(int fd, Bytes& payload) {
  uint8_t header[4];
  if (!recv_all(fd, header, 4)) return false;
  uint32_t n = (uint32_t(header[0]) << 24) | (uint32_t(header[1]) << 16) | (uint32_t(header[2]) << 8) | header[3];
  if (n > kMaxMessage) return false;
  payload.resize(n);
  return recv_all(fd, payload.data(), n);
}

struct AddrInfo {
  addrinfo* list = nullptr;
  ~AddrInfo() {
    if (list) ::freeaddrinfo(list);
  }
};

int resolve(const std::string& host, uint16_t port, AddrInfo& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  return ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &out.list);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

struct StoreServer::State {
  std::chrono::milliseconds liveness_timeout{0};
  int listen_fd = -1;
  uint16_t port = 0;

  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, Bytes> values;
  struct RankInfo {
    bool goodbye = false;
    Clock::time_point last_seen;
  };
  std::map<int, RankInfo> ranks;  // ranks with a liveness connection
  std::vector<int64_t> progress;
  int failed_rank = -1;
  std::string failed_reason;
  int goodbyes = 0;
  bool stopping = false;

  std::vector<int> client_fds;
  std::vector<std::thread> threads;
  std::thread acceptor, monitor;

  void mark_failed(int rank, const std::string& reason) {  // holds mutex
    if (failed_rank < 0) {
      failed_rank = rank;
      failed_reason = reason;
    }
    changed.notify_all();
  }

  Bytes health() {  // holds mutex
    Writer w;
    w.i64(failed_rank).str(failed_reason).u32(static_cast<uint32_t>(progress.size()));
    for (int64_t p : progress) w.i64(p);
    return w.take();
  }

  // Waits until every key exists; returns the status to answer with.
  Status wait_keys(std::unique_lock<std::mutex>& lock, const std::vector<std::string>& keys, int64_t timeout_ms) {
    auto ready = [&] {
      return stopping || failed_rank >= 0 ||
             std::all_of(keys.begin(), keys.end(), [&](const std::string& k) { return values.count(k) > 0; });
    };
    if (timeout_ms <= 0) {
      changed.wait(lock, ready);
    } else if (!changed.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
      return kTimeout;
    }
    if (std::all_of(keys.begin(), keys.end(), [&](const std::string& k) { return values.count(k) > 0; })) return kOk;
    return failed_rank >= 0 ? kRankFailed : kTimeout;
  }

  Bytes status_reply(Status status) {  // holds mutex
    Writer w;
    w.u8(status);
    if (status == kRankFailed) w.str("rank " + std::to_string(failed_rank) + " failed: " + failed_reason);
    if (status == kTimeout) w.str("timed out waiting for keys");
    return w.take();
  }

  Bytes handle(const Bytes& request, int& liveness_rank) {
    Reader in(request);
    const uint8_t op = in.u8();
    std::unique_lock<std::mutex> lock(mutex);
    switch (op) {
      case kSet: {
        std::string key = in.str();
        values[key] = in.bytes();
        changed.notify_all();
        return Writer().u8(kOk).take();
      }
      case kGet: {
        std::string key = in.str();
        int64_t timeout_ms = in.i64();
        Status status = wait_keys(lock, {key}, timeout_ms);
        if (status != kOk) return status_reply(status);
        return Writer().u8(kOk).bytes(values[key]).take();
      }
      case kAdd: {
        std::string key = in.str();
        int64_t delta = in.i64();
        int64_t value = 0;
        auto it = values.find(key);
        if (it != values.end()) value = std::stoll(std::string(it->second.begin(), it->second.end()));
        value += delta;
        std::string text = std::to_string(value);
        values[key] = Bytes(text.begin(), text.end());
        changed.notify_all();
        return Writer().i64(value).take();
      }
      case kCompareSet: {
        std::string key = in.str();
        Bytes expected = in.bytes(), desired = in.bytes();
        auto it = values.find(key);
        if (it == values.end()) {
          if (!expected.empty()) return Writer().bytes(expected).take();
          values[key] = desired;
          changed.notify_all();
          return Writer().bytes(desired).take();
        }
        if (it->second == expected) {
          it->second = desired;
          changed.notify_all();
        }
        return Writer().bytes(it->second).take();
      }
      case kDelete:
        return Writer().u8(values.erase(in.str()) > 0 ? 1 : 0).take();
      case kCheck: {
        uint32_t n = in.u32();
        bool all = true;
        for (uint32_t i = 0; i < n; ++i) all = values.count(in.str()) > 0 && all;
        return Writer().u8(all ? 1 : 0).take();
      }
      case kNumKeys:
        return Writer().i64(static_cast<int64_t>(values.size())).take();
      case kWait: {
        uint32_t n = in.u32();
        std::vector<std::string> keys;
        for (uint32_t i = 0; i < n; ++i) keys.push_back(in.str());
        return status_reply(wait_keys(lock, keys, in.i64()));
      }
      case kHello: {
        int rank = static_cast<int>(in.i64());
        int world = static_cast<int>(in.i64());
        liveness_rank = rank;
        ranks[rank].last_seen = Clock::now();
        if (static_cast<int>(progress.size()) < world) progress.resize(world, -1);
        return Writer().u8(kOk).take();
      }
      case kPing: {
        int64_t counter = in.i64();
        if (liveness_rank >= 0) {
          ranks[liveness_rank].last_seen = Clock::now();
          if (liveness_rank < static_cast<int>(progress.size())) progress[liveness_rank] = counter;
        }
        return health();
      }
      case kHealth:
        return health();
      case kBye:
        if (liveness_rank >= 0 && !ranks[liveness_rank].goodbye) {
          ranks[liveness_rank].goodbye = true;
          ++goodbyes;
          changed.notify_all();
        }
        return Writer().u8(kOk).take();
      default:
        throw std::runtime_error("unknown store op");
    }
  }

  void serve(int fd) {
    int liveness_rank = -1;
    Bytes request;
    while (recv_message(fd, request)) {
      Bytes reply;
      try {
        reply = handle(request, liveness_rank);
      } catch (const std::exception&) {
        break;  // a malformed request: drop the connection
      }
      if (!send_message(fd, reply)) break;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (liveness_rank >= 0 && !ranks[liveness_rank].goodbye && !stopping)
      mark_failed(liveness_rank, "its connection to the rendezvous store closed (the process died or exited early)");
  }

  void accept_loop(std::shared_ptr<State> self) {
    for (;;) {
      int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // shut down
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard<std::mutex> lock(mutex);
      if (stopping) {
        ::close(fd);
        return;
      }
      client_fds.push_back(fd);
      threads.emplace_back([self, fd] { self->serve(fd); });
    }
  }

  void monitor_loop() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping) {
      changed.wait_for(lock, std::chrono::milliseconds(100));
      const auto now = Clock::now();
      for (auto& [rank, info] : ranks) {
        if (info.goodbye || now - info.last_seen <= liveness_timeout) continue;
        mark_failed(rank, "no heartbeat for " +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(liveness_timeout).count()) +
                              " s (the process hangs or its machine is unreachable)");
      }
    }
  }
};

StoreServer::StoreServer(const std::string& host, uint16_t port, std::chrono::milliseconds liveness_timeout)
    : state_(std::make_shared<State>()) {
  state_->liveness_timeout = liveness_timeout;
  AddrInfo addresses;
  if (int rc = resolve(host, port, addresses))
    throw std::runtime_error("rendezvous store: cannot resolve '" + host + "': " + ::gai_strerror(rc));
  int error = 0;
  for (addrinfo* a = addresses.list; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      state_->listen_fd = fd;
      break;
    }
    error = errno;
    ::close(fd);
  }
  if (state_->listen_fd < 0)
    throw std::runtime_error("rendezvous store: cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             std::strerror(error));
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(state_->listen_fd, reinterpret_cast<sockaddr*>(&bound), &length);
  state_->port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                             : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  auto state = state_;
  state_->acceptor = std::thread([state] { state->accept_loop(state); });
  state_->monitor = std::thread([state] { state->monitor_loop(); });
}

StoreServer::~StoreServer() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
    ::shutdown(state_->listen_fd, SHUT_RDWR);
    for (int fd : state_->client_fds) ::shutdown(fd, SHUT_RDWR);
    state_->changed.notify_all();
  }
  state_->acceptor.join();
  state_->monitor.join();
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    threads.swap(state_->threads);
  }
  for (auto& t : threads) t.join();
  for (int fd : state_->client_fds) ::close(fd);
  ::close(state_->listen_fd);
}

uint16_t StoreServer::port() const { return state_->port; }

bool StoreServer::wait_for_goodbyes(int count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return state_->goodbyes >= count || state_->failed_rank >= 0; }) &&
         state_->goodbyes >= count;
}

// ---------------------------------------------------------------------------------------------
// Client

StoreClient::StoreClient(const std::string& host, uint16_t port, std::chrono::milliseconds timeout)
    : c10d::Store(timeout), host_(host), port_(port) {
  const auto deadline = Clock::now() + timeout;
  std::string last_error = "timed out";
  for (;;) {
    AddrInfo addresses;
    if (int rc = resolve(host, port, addresses)) {
      last_error = ::gai_strerror(rc);
    } else {
      for (addrinfo* a = addresses.list; a && fd_ < 0; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          fd_ = fd;
        } else {
          last_error = std::strerror(errno);
          ::close(fd);
        }
      }
    }
    if (fd_ >= 0) break;
    if (Clock::now() > deadline)
      TORCH_CHECK(false, "cannot reach the rendezvous store at ", host, ":", port, " (", last_error, ") within ",
                  timeout.count() / 1000, " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // A server machine that vanishes must not block a client forever: the server answers every
  // request within the store timeout (waits included), so a silence well beyond it is a failure.
  set_reply_timeout(timeout + std::chrono::seconds(5));
}

void StoreClient::set_reply_timeout(std::chrono::milliseconds limit) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(limit.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((limit.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

StoreClient::~StoreClient() {
  if (fd_ >= 0) ::close(fd_);
}

Bytes StoreClient::request(const Bytes& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  Bytes reply;
  TORCH_CHECK(fd_ >= 0 && send_message(fd_, message) && recv_message(fd_, reply),
              "lost the connection to the rendezvous store at ", host_, ":", port_, " (hosted by rank 0)");
  return reply;
}

namespace {
void check_status(Reader& in, const std::string& what) {
  uint8_t status = in.u8();
  if (status == kOk) return;
  std::string detail = in.str();
  TORCH_CHECK(false, "rendezvous store: ", what, ": ", detail);
}
}  // namespace

void StoreClient::set(const std::string& key, const Bytes& value) {
  Bytes reply = request(Writer().u8(kSet).str(key).bytes(value).take());
  Reader in(reply);
  check_status(in, "set " + key);
}

Bytes StoreClient::compareSet(const std::string& key, const Bytes& expected, const Bytes& desired) {
  Bytes reply = request(Writer().u8(kCompareSet).str(key).bytes(expected).bytes(desired).take());
  return Reader(reply).bytes();
}

Bytes StoreClient::get(const std::string& key) {
  Bytes reply = request(Writer().u8(kGet).str(key).i64(timeout_.count()).take());
  Reader in(reply);
  check_status(in, "get " + key);
  return in.bytes();
}

int64_t StoreClient::add(const std::string& key, int64_t value) {
  Bytes reply = request(Writer().u8(kAdd).str(key).i64(value).take());
  return Reader(reply).i64();
}

bool StoreClient::deleteKey(const std::string& key) {
  Bytes reply = request(Writer().u8(kDelete).str(key).take());
  return Reader(reply).u8() != 0;
}

bool StoreClient::check(const std::vector<std::string>& keys) {
  Writer w;
  w.u8(kCheck).u32(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) w.str(k);
  Bytes reply = request(w.take());
  return Reader(reply).u8() != 0;
}

int64_t StoreClient::getNumKeys() {
  Bytes reply = request(Writer().u8(kNumKeys).take());
  return Reader(reply).i64();
}

void StoreClient::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void StoreClient::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  Writer w;
  w.u8(kWait).u32(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) w.str(k);
  w.i64(timeout.count());
  Bytes reply = request(w.take());
  Reader in(reply);
  check_status(in, "wait");
}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6)
c10::intrusive_ptr<c10d::Store> StoreClient::clone() {
  return c10::make_intrusive<StoreClient>(host_, port_, timeout_);
}
#endif

void StoreClient::hello(int rank, int world_size) {
  Bytes reply = request(Writer().u8(kHello).i64(rank).i64(world_size).take());
  Reader in(reply);
  check_status(in, "hello");
}

namespace {
StoreHealth parse_health(const Bytes& reply) {
  Reader in(reply);
  StoreHealth h;
  h.failed_rank = static_cast<int>(in.i64());
  h.reason = in.str();
  uint32_t n = in.u32();
  for (uint32_t i = 0; i < n; ++i) h.progress.push_back(in.i64());
  return h;
}
}  // namespace

StoreHealth StoreClient::ping(int64_t progress) { return parse_health(request(Writer().u8(kPing).i64(progress).take())); }

StoreHealth StoreClient::health() { return parse_health(request(Writer().u8(kHealth).take())); }

void StoreClient::goodbye() {
  Bytes reply = request(Writer().u8(kBye).take());
  Reader in(reply);
  check_status(in, "goodbye");
}

}  // namespace lesseg
