#pragma once
// Helpers shared by the probe sources (internal to src/lesseg/eval).
#include <array>
#include <cmath>
#include <string>

#include <torch/nn/module.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/loader_config.h"  // config_triple for data.mean / data.std

namespace lesseg::probe_detail {

// Eval mode for the probe's duration; the caller's training flag comes back afterwards.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& module) : module_(module), was_training_(module.is_training()) {
    module_.eval();
  }
  ~EvalModeGuard() { module_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

template <typename T>
T positive(const Config& config, const std::string& key) {
  const T value = config.get<T>(key);
  if (!(value > 0)) throw_usage(key + " must be > 0, got " + std::to_string(value));
  return value;
}

// SGD learning rate at step `step` of `total`: cosine from base to 0 (ref: dino utils.cosine_scheduler).
inline double cosine_lr(double base, int64_t step, int64_t total) {
  return total <= 1 ? base : 0.5 * base * (1.0 + std::cos(M_PI * double(step) / double(total)));
}

}  // namespace lesseg::probe_detail
