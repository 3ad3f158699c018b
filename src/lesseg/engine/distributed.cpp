#include "lesseg/engine/distributed.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/store.h"

namespace lesseg {

namespace {

using Clock = std::chrono::steady_clock;

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < INT32_MIN || value > INT32_MAX)
    throw_usage(std::string("environment variable ") + name + "='" + text + "' is not an integer");
  return static_cast<int>(value);
}

// The local address this machine uses to reach `host` (UDP connect sends nothing): gloo listens
// there, so a rank never listens on all interfaces.
std::string local_address_towards(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), "9", &hints, &list) != 0 || !list)
    throw_usage("MASTER_ADDR '" + host + "' does not resolve");
  std::string out;
  int fd = ::socket(list->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, list->ai_addr, list->ai_addrlen) == 0) {
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    char text[INET6_ADDRSTRLEN] = {0};
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      const void* address = local.ss_family == AF_INET6
                                ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                                : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
      if (::inet_ntop(local.ss_family, address, text, sizeof(text))) out = text;
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(list);
  if (out.empty()) throw_usage("no local address routes to MASTER_ADDR '" + host + "'");
  return out;
}

}  // namespace

DistributedOptions distributed_options_from(const Config& config) {
  DistributedOptions o;
  o.world_size = env_int("WORLD_SIZE", 1);
  o.rank = env_int("RANK", -1);
  o.local_rank = env_int("LOCAL_RANK", o.rank);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) o.master_addr = addr;
  o.master_port = env_int("MASTER_PORT", 29500);
  o.backend = config.get<std::string>("distributed.backend");
  o.timeout_s = config.get<int>("distributed.timeout_s");
  o.bucket_mb = config.get<double>("distributed.bucket_mb");
  if (config.get<bool>("distributed.sync_bn"))
    throw_usage("distributed.sync_bn is not supported yet: each rank normalizes over its own slice of the batch "
                "(use train.freeze_bn, or per-rank batches large enough for BatchNorm)");
  if (o.world_size < 1) throw_usage("WORLD_SIZE must be >= 1");
  if (o.world_size == 1 && o.rank < 0) o.rank = 0;
  if (o.rank < 0 || o.rank >= o.world_size)
    throw_usage("RANK must be set to a value in [0, WORLD_SIZE) (WORLD_SIZE=" + std::to_string(o.world_size) + ")");
  if (o.local_rank < 0) o.local_rank = o.rank;
  if (o.master_port < 1 || o.master_port > 65535) throw_usage("MASTER_PORT must be in [1, 65535]");
  if (o.backend != "auto" && o.backend != "gloo" && o.backend != "nccl")
    throw_usage("distributed.backend must be auto, gloo or nccl");
  if (o.timeout_s <= 0) throw_usage("distributed.timeout_s must be positive");
  if (o.bucket_mb <= 0) throw_usage("distributed.bucket_mb must be positive");
  return o;
}

// ---------------------------------------------------------------------------------------------

struct Distributed::Group {
  c10::intrusive_ptr<StoreClient> store;
  virtual ~Group() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
};

namespace {
// The same calls on ProcessGroupGloo / ProcessGroupNCCL (ProcessGroups in 1.13, Backends in 2.x).
template <class PG>
struct GroupOf : Distributed::Group {
  c10::intrusive_ptr<PG> pg;
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors) override {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    return pg->allreduce(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, int root) override {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return pg->broadcast(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return pg->barrier(c10d::BarrierOptions()); }
};
}  // namespace

template <class Fn>
void Distributed::collective(const char* what, Fn&& fn) {
  progress_.fetch_add(1);
  try {
    fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail_collective(what, e.what());
  }
}

Distributed::Distributed(const DistributedOptions& options, c10::Device device) : options_(options), device_(device) {}

std::shared_ptr<Distributed> Distributed::connect(const DistributedOptions& options, c10::Device device) {
  if (options.world_size <= 1) return nullptr;
  if (device.is_cuda() && !device.has_index()) device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(options.local_rank));
  std::shared_ptr<Distributed> dist(new Distributed(options, device));
  const auto timeout = std::chrono::milliseconds(int64_t(options.timeout_s) * 1000);
  const auto port = static_cast<uint16_t>(options.master_port);
  if (options.rank == 0) {
    try {
      dist->server_ = std::make_unique<StoreServer>(options.master_addr, port, timeout);
    } catch (const std::exception& e) {
      throw Error(ExitCode::usage, e.what());
    }
  }
  auto group_store = c10::make_intrusive<StoreClient>(options.master_addr, port, timeout);
  dist->liveness_ = std::make_unique<StoreClient>(options.master_addr, port, timeout);
  dist->liveness_->set_reply_timeout(timeout);  // a frozen rank 0 is a failure after timeout_s too
  dist->liveness_->hello(options.rank, options.world_size);
  dist->watchdog_ = std::thread([raw = dist.get()] { raw->watchdog_loop(); });

  std::string backend = options.backend;
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
  dist->collective("rendezvous", [&] {
    if (backend == "nccl") {
#ifdef USE_C10D_NCCL
      auto pg_options = c10d::ProcessGroupNCCL::Options::create();
      pg_options->timeout = timeout;
      auto group = std::make_unique<GroupOf<c10d::ProcessGroupNCCL>>();
      group->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_store, options.rank, options.world_size, pg_options);
      group->store = group_store;
      dist->group_ = std::move(group);
#else
      throw_usage("distributed.backend nccl: this LibTorch was built without NCCL (use gloo)");
#endif
    } else {
#ifdef USE_C10D_GLOO
      auto pg_options = c10d::ProcessGroupGloo::Options::create(timeout);
      // Gloo listens on one interface: GLOO_SOCKET_IFNAME when given (as in PyTorch), else the
      // address this machine uses to reach MASTER_ADDR (loopback for a single-machine run).
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      pg_options->devices.push_back(interface && *interface
                                        ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                        : c10d::ProcessGroupGloo::createDeviceForHostname(
                                              local_address_towards(options.master_addr)));
      auto group = std::make_unique<GroupOf<c10d::ProcessGroupGloo>>();
      group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, options.rank, options.world_size, pg_options);
      group->store = group_store;
      dist->group_ = std::move(group);
#else
      throw_usage("distributed.backend gloo: this LibTorch was built without c10d gloo");
#endif
    }
  });
  if (options.rank != 0) spdlog::set_level(spdlog::level::warn);  // rank 0 reports progress
  spdlog::info("distributed: rank {} of {}, {} on {}, store {}:{}", options.rank, options.world_size, backend,
               device.str(), options.master_addr, options.master_port);
  return dist;
}

Distributed::~Distributed() {
  stop_watchdog();
  if (!finished_) {
    // An error path: a process group whose peers may be gone can block in its destructor; the
    // process is about to exit, so let it go.
    (void)group_.release();
  }
  group_.reset();
  liveness_.reset();
  server_.reset();
}

void Distributed::stop_watchdog() {
  {
    std::lock_guard<std::mutex> lock(watchdog_mutex_);
    watchdog_stop_ = true;
  }
  watchdog_wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void Distributed::watchdog_loop() {
  const auto interval = std::chrono::milliseconds(std::clamp(options_.timeout_s * 100, 100, 500));
  std::unique_lock<std::mutex> lock(watchdog_mutex_);
  while (!watchdog_wake_.wait_for(lock, interval, [this] { return watchdog_stop_; })) {
    lock.unlock();
    int failed_rank = -1;
    std::string reason;
    try {
      StoreHealth health = liveness_->ping(progress_.load());
      failed_rank = health.failed_rank;
      reason = health.reason;
    } catch (const std::exception&) {
      failed_rank = 0;
      reason = "the rendezvous store it hosts is unreachable (the process died or hangs?)";
    }
    lock.lock();
    if (failed_rank < 0 || watchdog_stop_) continue;
    bool expected = false;
    if (!failing_.compare_exchange_strong(expected, true)) return;  // the main thread reports it
    std::cerr << "error: distributed run: rank " << failed_rank << " failed: " << reason << " (rank " << options_.rank
              << " exits)" << std::endl;
    std::_Exit(static_cast<int>(ExitCode::peer_failed));
  }
}

void Distributed::fail(int failed_rank, const std::string& reason) {
  bool expected = false;
  if (!failing_.compare_exchange_strong(expected, true)) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // the watchdog is exiting the process
  }
  std::string message = failed_rank >= 0 ? "distributed run: rank " + std::to_string(failed_rank) + " failed: " + reason
                                         : "distributed run: " + reason;
  throw Error(ExitCode::peer_failed, message + " (rank " + std::to_string(options_.rank) + " exits)");
}

void Distributed::fail_collective(const std::string& what, const std::string& error) {
  const int64_t mine = progress_.load();
  // The store learns of a dead process at once; give it (and the progress reports) a moment.
  const auto deadline = Clock::now() + std::chrono::seconds(std::min(options_.timeout_s, 5));
  StoreHealth health;
  for (;;) {
    try {
      health = liveness_->health();
    } catch (const std::exception&) {
      fail(0, "the rendezvous store it hosts is unreachable (the process died or hangs?)");
    }
    if (health.failed_rank >= 0) fail(health.failed_rank, health.reason);
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<int> behind;
  for (int r = 0; r < static_cast<int>(health.progress.size()); ++r)
    if (r != options_.rank && health.progress[r] < mine) behind.push_back(r);
  if (!behind.empty()) {
    std::string others;
    for (size_t i = 1; i < behind.size(); ++i) others += (others.empty() ? " (also behind: rank " : ", rank ") + std::to_string(behind[i]);
    if (!others.empty()) others += ")";
    fail(behind.front(), "it did not reach the " + what + " within distributed.timeout_s = " +
                             std::to_string(options_.timeout_s) + " s" + others + "; " + error);
  }
  fail(-1, what + " failed: " + error);
}

void Distributed::for_each_bucket(const std::vector<at::Tensor>& tensors,
                                  const std::function<void(std::vector<at::Tensor>&)>& fn) {
  const int64_t limit = std::max<int64_t>(1, static_cast<int64_t>(options_.bucket_mb * (1 << 20)));
  size_t i = 0;
  while (i < tensors.size()) {
    size_t j = i + 1;
    int64_t bytes = tensors[i].numel() * static_cast<int64_t>(tensors[i].element_size());
    while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
           tensors[j].device() == tensors[i].device() &&
           bytes + tensors[j].numel() * static_cast<int64_t>(tensors[j].element_size()) <= limit) {
      bytes += tensors[j].numel() * static_cast<int64_t>(tensors[j].element_size());
      ++j;
    }
    std::vector<at::Tensor> pieces;
    for (size_t k = i; k < j; ++k) pieces.push_back(tensors[k].reshape({-1}));
    std::vector<at::Tensor> buffer{torch::cat(pieces).to(device_)};
    fn(buffer);
    int64_t offset = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].copy_(buffer[0].narrow(0, offset, n).view(tensors[k].sizes()));
      offset += n;
    }
    i = j;
  }
}

void Distributed::broadcast_module(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors = module.parameters(true);
  for (auto& buffer : module.buffers(true)) tensors.push_back(buffer);
  collective("parameter broadcast", [&] {
    for_each_bucket(tensors, [&](std::vector<at::Tensor>& buffer) { group_->broadcast(buffer, 0)->wait(); });
  });
}

void Distributed::average_gradients(const std::vector<at::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  const double world = options_.world_size;
  collective("gradient all-reduce", [&] {
    for_each_bucket(grads, [&](std::vector<at::Tensor>& buffer) {
      group_->allreduce(buffer)->wait();
      buffer[0].div_(world);
    });
  });
}

void Distributed::all_reduce_sum(at::Tensor& tensor) {
  std::vector<at::Tensor> buffer{tensor.to(device_).contiguous().clone()};
  collective("metric all-reduce", [&] { group_->allreduce(buffer)->wait(); });
  tensor.copy_(buffer[0]);
}

void Distributed::barrier() {
  collective("barrier", [&] { group_->barrier()->wait(); });
}

void Distributed::finish() {
  barrier();
  stop_watchdog();
  liveness_->goodbye();
  finished_ = true;
  if (server_ && !server_->wait_for_goodbyes(options_.world_size, std::chrono::seconds(options_.timeout_s)))
    spdlog::warn("distributed: not every rank said goodbye to the store within {} s", options_.timeout_s);
}

}  // namespace lesseg
