#pragma once
// The rendezvous store of a distributed run: a small TCP key-value server that rank 0 runs on the
// address it is given (LibTorch 1.13's c10d::TCPStore listens on every interface, whatever host it
// is given), and a client implementing c10d::Store so that ProcessGroupGloo / ProcessGroupNCCL
// rendezvous through it.
//
// The server also watches the ranks: each rank holds one liveness connection (hello(rank), then a
// ping every fraction of a second). A liveness connection that closes before the rank said
// goodbye, or stays silent longer than the liveness timeout, marks the rank failed; every ping
// answers with the first failed rank, so the others learn of it within one ping interval.
//
// No authentication and no encryption (like c10d's own stores): serve on trusted networks only.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>

namespace lesseg {

class StoreServer {
 public:
  // Listens on host:port (a numeric IPv4 / IPv6 address or a name; port 0 = any free port).
  StoreServer(const std::string& host, uint16_t port, std::chrono::milliseconds liveness_timeout);
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  uint16_t port() const;
  // Waits until `count` ranks said goodbye (or one failed, or the timeout passed); true if they did.
  bool wait_for_goodbyes(int count, std::chrono::milliseconds timeout);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// What the server knows about the ranks' health.
struct StoreHealth {
  int failed_rank = -1;  // the first rank marked failed, -1 if none
  std::string reason;    // why, e.g. "connection lost (process died?)"
  std::vector<int64_t> progress;  // per rank: the last progress counter it reported (-1 = none)
};

class StoreClient : public c10d::Store {
 public:
  // Connects to host:port, retrying until `timeout` (the server may start later).
  StoreClient(const std::string& host, uint16_t port, std::chrono::milliseconds timeout);
  ~StoreClient() override;

  void set(const std::string& key, const std::vector<uint8_t>& value) override;
  std::vector<uint8_t> compareSet(const std::string& key, const std::vector<uint8_t>& expected,
                                  const std::vector<uint8_t>& desired) override;
  std::vector<uint8_t> get(const std::string& key) override;  // waits for the key up to the timeout
  int64_t add(const std::string& key, int64_t value) override;
  bool deleteKey(const std::string& key) override;
  bool check(const std::vector<std::string>& keys) override;
  int64_t getNumKeys() override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6)
  c10::intrusive_ptr<c10d::Store> clone() override;
#endif

  // A request whose reply takes longer fails (default: the store timeout + 5 s).
  void set_reply_timeout(std::chrono::milliseconds limit);

  // Liveness protocol (use a separate client for it: requests on one client are serialized; the
  // server answers these at once, so a short reply timeout detects a hung or unreachable server).
  void hello(int rank, int world_size);
  // Reports this rank's progress counter; returns the server's view of the ranks.
  StoreHealth ping(int64_t progress);
  StoreHealth health();
  void goodbye();

 private:
  std::vector<uint8_t> request(const std::vector<uint8_t>& message);
  std::string host_;
  uint16_t port_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace lesseg
