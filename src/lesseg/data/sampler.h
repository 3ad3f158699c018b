#pragma once
// Epoch-wise index order: a seeded permutation per epoch (or identity), sharded by rank so that
// distributed ranks see disjoint, equally long slices. Its position is saved for exact resume.
#include <cstdint>
#include <vector>

namespace lesseg {

struct SamplerState {
  int64_t epoch = 0;
  int64_t cursor = 0;  // next position within this rank's slice of the epoch
};

// A loader position saved by a run with `from_world` ranks, for a run with `to_world` ranks (the
// same global batch): cursors count one rank's samples. Throws a usage error if it does not divide.
SamplerState rescale_sampler_state(SamplerState state, int from_world, int to_world);

// A repeating loader that hands out `batch_size` samples per batch and `batches_per_epoch` batches
// per epoch: the batches it has handed out at `state`, and the state after `batches` batches.
// Loaders that step together (a semi-supervised labeled and unlabeled loader) save one position.
int64_t batches_done(SamplerState state, int64_t batches_per_epoch, int64_t batch_size);
SamplerState state_after_batches(int64_t batches, int64_t batches_per_epoch, int64_t batch_size);

class ShardedSampler {
 public:
  ShardedSampler(size_t dataset_size, bool shuffle, uint64_t seed, int rank = 0, int world_size = 1);
  // Weighted sampling instead of a permutation: each epoch draws dataset_size indices with
  // replacement, index i with probability weights[i] / sum (rare-class sampling). Needs shuffle.
  void set_weights(std::vector<double> weights);
  // This rank's indices for one epoch (padded by wrapping so every rank gets the same count).
  std::vector<size_t> epoch_indices(int64_t epoch) const;
  size_t per_rank() const;
  // The position in the (unsharded) epoch permutation of this rank's `cursor`-th sample.
  size_t global_position(int64_t cursor) const { return static_cast<size_t>(cursor) * world_size_ + rank_; }

 private:
  size_t size_;
  bool shuffle_;
  uint64_t seed_;
  std::vector<double> cumulative_;  // empty: a permutation
  int rank_, world_size_;
};

}  // namespace lesseg
