#pragma once
// The part every semi-supervised method shares (CPS, UniMatch, IGL-DT): a labeled and an unlabeled
// batch per step, weak and strong views of the unlabeled crop, CutMix partners, the held-out
// evaluation and the saved loader position. A method adds its models and its losses.
#include <random>

#include "lesseg/data/paired_loader.h"
#include "lesseg/engine/task.h"
#include "lesseg/methods/common/mixing.h"
#include "lesseg/methods/common/segmentation_run.h"

namespace lesseg {

class Config;

// One step's data on the device.
struct SemiBatch {
  at::Tensor images, labels;     // labeled: [B,3,H,W], [B,H,W] (ignore_index on padding)
  at::Tensor weak;               // unlabeled weak views [U,3,H,W]
  std::vector<at::Tensor> strong;  // strong views of the same crops, pixel-aligned with `weak`
  at::Tensor ignored;            // [U,H,W] bool: padding of the unlabeled crops
};

// A CutMix'ed copy of a strong view: each image takes a box from the next image in the batch (a
// roll by one: UniMatch draws a second unlabeled batch instead), and the mask that says where.
struct MixedView {
  at::Tensor images, mask;
};

class SemiTask : public TrainTask {
 public:
  SemiTask(const Config& config, const SegmentationRun& run, int strong_views);
  SamplerState loader_state() const override { return loader_->state(); }
  void restore(SamplerState state) override;
  int64_t images_per_step() const override { return labeled_options_.batch_size + unlabeled_options_.batch_size; }
  std::string evaluation_split() const override { return run_.watched_name(); }
  int64_t skipped_images() const { return loader_ ? loader_->skipped() : 0; }

 protected:
  SemiBatch next_batch();
  MixedView cutmix(const at::Tensor& images, const CutMixOptions& options);
  // `target` where the mask is false, the rolled partner's value where it is true (labels,
  // confidences, ignore masks follow the images this way).
  static at::Tensor follow_mix(const at::Tensor& target, const at::Tensor& mask);
  at::Tensor supervised_loss(const at::Tensor& logits, const at::Tensor& labels) const;
  // A random stream for this step's draws (CutMix boxes, ClassMix classes): seeded by (seed, step,
  // draw, salt), so a resumed run draws the same.
  std::mt19937_64 step_rng(uint64_t salt);

  const SegmentationRun& run_;
  int64_t ignore_index_;
  bool freeze_bn_ = false;

 private:
  LoaderOptions labeled_options_, unlabeled_options_;
  std::unique_ptr<PairedLoader> loader_;
  uint64_t seed_;
  int64_t step_ = 0;  // steps drawn: CutMix boxes are seeded by (seed, step, draw), so a resumed run draws the same
  int64_t draws_ = 0;
};

// CutMix settings from semi.cutmix_* keys.
CutMixOptions cutmix_options_from(const Config& config);

}  // namespace lesseg
