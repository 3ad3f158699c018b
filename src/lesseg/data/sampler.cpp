#include "lesseg/data/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "lesseg/core/error.h"
#include "lesseg/core/rng.h"

namespace lesseg {

SamplerState rescale_sampler_state(SamplerState state, int from_world, int to_world) {
  if (from_world == to_world) return state;
  const int64_t global = state.cursor * from_world;
  if (global % to_world != 0)
    throw_usage("cannot resume a " + std::to_string(from_world) + "-rank checkpoint (sample " + std::to_string(global) +
                " of the epoch) with " + std::to_string(to_world) + " ranks");
  return {state.epoch, global / to_world};
}

int64_t batches_done(SamplerState state, int64_t batches_per_epoch, int64_t batch_size) {
  return state.epoch * batches_per_epoch + state.cursor / batch_size;
}

SamplerState state_after_batches(int64_t batches, int64_t batches_per_epoch, int64_t batch_size) {
  return {batches / batches_per_epoch, (batches % batches_per_epoch) * batch_size};
}

ShardedSampler::ShardedSampler(size_t dataset_size, bool shuffle, uint64_t seed, int rank, int world_size)
    : size_(dataset_size), shuffle_(shuffle), seed_(seed), rank_(rank), world_size_(world_size) {}

void ShardedSampler::set_weights(std::vector<double> weights) {
  if (weights.size() != size_) throw_usage("sampling weights: " + std::to_string(weights.size()) + " for " + std::to_string(size_) + " samples");
  if (!shuffle_) throw_usage("weighted sampling needs shuffling");
  cumulative_.clear();
  double sum = 0;
  for (double w : weights) {
    if (!(w >= 0) || !std::isfinite(w)) throw_usage("sampling weights must be finite and >= 0");
    cumulative_.push_back(sum += w);
  }
  if (!(sum > 0)) throw_usage("sampling weights are all 0");
}

size_t ShardedSampler::per_rank() const { return (size_ + world_size_ - 1) / world_size_; }

std::vector<size_t> ShardedSampler::epoch_indices(int64_t epoch) const {
  std::vector<size_t> order(size_);
  std::iota(order.begin(), order.end(), 0);
  if (!cumulative_.empty()) {
    // Inverse-CDF draws on the raw engine output: the same indices on every toolchain.
    std::mt19937_64 rng(mix_seed({seed_, static_cast<uint64_t>(epoch), 0x3c5a11}));
    for (size_t& index : order) {
      const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * cumulative_.back();
      index = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
      index = std::min(index, size_ - 1);
    }
  } else if (shuffle_) {
    std::mt19937_64 rng(mix_seed({seed_, static_cast<uint64_t>(epoch), 0x5a3b1e}));
    std::shuffle(order.begin(), order.end(), rng);
  }
  std::vector<size_t> mine;
  const size_t total = per_rank() * world_size_;
  for (size_t i = rank_; i < total; i += world_size_) mine.push_back(order[i % size_]);
  return mine;
}

}  // namespace lesseg
