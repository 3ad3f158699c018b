#pragma once
// Batches for training and evaluation, prepared by C++ worker threads ahead of the trainer.
// Deterministic for a seed: sample k of epoch e is augmented with an RNG seeded by (seed, e, k),
// whichever thread prepares it and whichever rank draws it, and batches come out in order.
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <ATen/core/Tensor.h>

#include "lesseg/data/dataset.h"
#include "lesseg/data/sampler.h"
#include "lesseg/data/ssl/views.h"
#include "lesseg/data/transforms.h"

namespace lesseg {

struct Batch {
  at::Tensor images;  // [B,3,H,W] float32, normalized
  at::Tensor masks;   // [B,H,W] int64 (ignore_index where unlabeled); undefined if unlabeled
  std::vector<at::Tensor> views;  // with LoaderOptions::views: view v of every sample, [B,3,h_v,w_v]
  // With LoaderOptions::strong_views: strong view s of every sample, [B,3,H,W], pixel-aligned with
  // `images` (the weak view) and `masks`.
  std::vector<at::Tensor> strong;
  // Per image [N_i, H, W] uint8 0/1 object masks (N_i may be 0); filled when the dataset has
  // instances (SegSample::instances of any sample), else empty.
  std::vector<at::Tensor> instances;
  std::vector<std::string> ids;
  int64_t fallbacks = 0;  // samples whose region sampler fell back to whole-image views
  int64_t skipped = 0;  // bad samples replaced in this batch (LoaderOptions::skip_bad_images)
};

struct LoaderOptions {
  int batch_size = 8;
  bool shuffle = true;
  bool drop_last = true;
  bool repeat = true;  // training: cycle epochs forever; evaluation: one pass
  int workers = 2;
  int prefetch = 4;
  uint64_t seed = 0;
  int rank = 0, world_size = 1;
  AugmentOptions augment;
  // Self-supervised views instead of `augment`: Batch::views is filled, Batch::images/masks are not.
  ViewMakerPtr views;
  // Semi-supervised: this many photometric strong views of each augmented (weak) image
  // (data/semi_views.h: strong_view with strong_spec), in Batch::strong.
  int strong_views = 0;
  ViewSpec strong_spec;
  // Unreadable or invalid samples (bad_input) are skipped, counted and replaced by the next index
  // instead of stopping the run.
  bool skip_bad_images = false;
  // Non-empty: each epoch draws the samples with replacement by these weights (one per dataset
  // sample; rare-class sampling, data/rare_class.h) instead of a permutation.
  std::vector<double> sample_weights;
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
};

// RGB uint8 HWC -> normalized float CHW tensor (used by the loader and by predict).
at::Tensor image_to_tensor(const cv::Mat& rgb, const std::array<double, 3>& mean, const std::array<double, 3>& std);

class Loader {
 public:
  Loader(SegDatasetPtr dataset, LoaderOptions options, SamplerState start = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Next batch; false at the end of a non-repeating pass.
  bool next(Batch& batch);
  // Position after the batches handed out so far (for checkpoints).
  SamplerState state() const { return consumed_; }
  size_t batches_per_epoch() const;
  // Samples skipped in the batches handed out so far with skip_bad_images (a file that fails every
  // epoch counts every time).
  int64_t skipped() const { return skipped_; }
  // Samples whose views fell back to the whole image (LoaderOptions::views), in batches handed out.
  int64_t fallbacks() const { return fallbacks_; }

 private:
  struct Plan {
    SamplerState after;
    std::vector<std::pair<size_t, uint64_t>> samples;  // dataset index, augmentation seed
  };
  bool plan_next(Plan& plan);
  Batch build(const Plan& plan) const;
  Batch build_views(const Plan& plan) const;
  SegSample get_or_skip(size_t index, int64_t& skipped) const;
  void worker_loop();

  SegDatasetPtr dataset_;
  LoaderOptions options_;
  int64_t skipped_ = 0, fallbacks_ = 0;
  mutable std::mutex skip_mutex_;
  mutable std::set<std::string> warned_;
  ShardedSampler sampler_;
  SamplerState planned_, consumed_;
  std::vector<size_t> epoch_order_;
  int64_t epoch_order_for_ = -1;

  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<std::packaged_task<Batch()>> jobs_;
  std::deque<std::pair<SamplerState, std::future<Batch>>> pending_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

}  // namespace lesseg
