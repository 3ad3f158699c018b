#pragma once
// Distributed data parallel on LibTorch's c10d (README "Distributed training").
//
// Launched like torchrun: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR (default 127.0.0.1) and
// MASTER_PORT (default 29500) in the environment, by `lesseg launch` or by hand on each machine.
// Rank 0 serves the rendezvous store on MASTER_ADDR only (lesseg's own store, see store.h); the
// ranks then form a ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA builds).
//
// Training: parameters and buffers are broadcast from rank 0 at the start; after backward the
// gradients are flattened into buckets of `bucket_mb`, all-reduced and divided by the world size;
// each rank draws its own slice of every global batch (ShardedSampler); evaluation metrics are
// summed across ranks; only rank 0 writes files.
//
// Failure: every rank pings the store from a watchdog thread. A rank whose process dies (its
// connection closes) or falls silent for `timeout_s` is marked failed, and every other rank exits
// with ExitCode::peer_failed (6) and "rank R failed: <why>" within about a second. A collective
// that fails or times out (gloo's timeout is `timeout_s`) also ends the run with exit code 6,
// naming the failed rank, or else the ranks that had not reached the collective.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

namespace lesseg {

class Config;
class StoreServer;
class StoreClient;

struct DistributedOptions {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string backend = "auto";  // auto (nccl for cuda devices, else gloo) | gloo | nccl
  int timeout_s = 60;            // collectives, rendezvous and rank liveness
  double bucket_mb = 4;          // gradient all-reduce bucket size
};

// The torchrun variables from the environment plus the config's `distributed.*` keys; throws a
// usage error for malformed values. world_size is 1 when WORLD_SIZE is unset.
DistributedOptions distributed_options_from(const Config& config);

class Distributed {
 public:
  // Joins the process group; nullptr for a single-process run (world_size 1). `device` is the
  // configured device: a bare "cuda" becomes cuda:<LOCAL_RANK> (see device()).
  static std::shared_ptr<Distributed> connect(const DistributedOptions& options, c10::Device device);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  bool is_main() const { return options_.rank == 0; }
  c10::Device device() const { return device_; }

  // Copies rank 0's parameters and buffers into every rank's module.
  void broadcast_module(torch::nn::Module& module);
  // Averages the gradients of `parameters` over the ranks (undefined gradients are skipped; they
  // must be undefined on every rank).
  void average_gradients(const std::vector<at::Tensor>& parameters);
  // In-place sum over the ranks (any device; e.g. a confusion matrix).
  void all_reduce_sum(at::Tensor& tensor);
  void barrier();
  // The end of a successful run: waits for every rank, says goodbye to the store (so that an
  // exiting rank is not taken for a dead one); rank 0 keeps serving the store until all did.
  void finish();

  struct Group;  // the process group behind a small interface (gloo / nccl)

 private:
  Distributed(const DistributedOptions& options, c10::Device device);
  template <class Fn>
  void collective(const char* what, Fn&& fn);
  [[noreturn]] void fail_collective(const std::string& what, const std::string& error);
  // Throws Error(peer_failed) naming the failed rank (-1: none known), unless the watchdog is
  // already reporting a failure and exiting the process (then it waits for that).
  [[noreturn]] void fail(int failed_rank, const std::string& reason);
  void watchdog_loop();
  void stop_watchdog();
  // Applies fn to groups of tensors of one dtype and device, each group flattened into one buffer
  // of at most bucket_mb, and copies the buffers back.
  void for_each_bucket(const std::vector<at::Tensor>& tensors, const std::function<void(std::vector<at::Tensor>&)>& fn);

  DistributedOptions options_;
  c10::Device device_;
  std::unique_ptr<StoreServer> server_;  // rank 0
  std::unique_ptr<StoreClient> liveness_;  // hello / ping / goodbye
  std::unique_ptr<Group> group_;           // the rendezvous store client and the process group
  std::atomic<int64_t> progress_{0};  // collectives entered
  std::atomic<bool> failing_{false}, finished_{false};
  std::thread watchdog_;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;
};

using DistributedPtr = std::shared_ptr<Distributed>;

}  // namespace lesseg
