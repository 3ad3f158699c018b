#include "lesseg/methods/semi/semi_task.h"

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/rng.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/data/semi_views.h"
#include "lesseg/nn/functional.h"

namespace lesseg {

CutMixOptions cutmix_options_from(const Config& config) {
  CutMixOptions o;
  o.probability = config.get<double>("semi.cutmix_prob");
  auto area = config.get<std::vector<double>>("semi.cutmix_area");
  if (area.size() != 2 || area[0] <= 0 || area[1] < area[0] || area[1] > 1)
    throw_usage("semi.cutmix_area must be [min, max] with 0 < min <= max <= 1");
  o.area_min = area[0];
  o.area_max = area[1];
  if (o.probability < 0 || o.probability > 1) throw_usage("semi.cutmix_prob must be in [0, 1]");
  return o;
}

SemiTask::SemiTask(const Config& config, const SegmentationRun& run, int strong_views)
    : run_(run), ignore_index_(run.splits.labeled->classes().ignore_index) {
  if (!run.splits.unlabeled)
    throw_usage("a semi-supervised method needs unlabeled images: set data.labeled (a count, fraction or list) "
                "or data.unlabeled_split");
  const int rank = run.dist ? run.dist->rank() : 0, world = run.dist ? run.dist->world_size() : 1;
  labeled_options_ = labeled_loader_options(config, run);
  unlabeled_options_ = train_loader_options(config, rank, world);
  const int unlabeled_batch = config.get<int>("semi.unlabeled_batch_size");
  if (unlabeled_batch < 0) throw_usage("semi.unlabeled_batch_size must be >= 0");
  if (unlabeled_batch > 0) {
    Config unlabeled_config = config;
    unlabeled_config.set("train.batch_size", std::to_string(unlabeled_batch));
    unlabeled_options_ = train_loader_options(unlabeled_config, rank, world);
  }
  seed_ = labeled_options_.seed;
  unlabeled_options_.seed = mix_seed({seed_, 0x01ab});  // its own augmentation stream
  unlabeled_options_.strong_views = strong_views;
  const auto crop = config.get<std::vector<int>>("data.crop");
  unlabeled_options_.strong_spec = strong_view_spec(std::max(crop.at(0), crop.at(1)));
  freeze_bn_ = config.get<bool>("train.freeze_bn");
  check_labeled_fills_batch(run, labeled_options_.batch_size);
  restore({});
}

void SemiTask::restore(SamplerState state) {
  loader_.reset();  // join the old workers before starting new ones
  loader_ = std::make_unique<PairedLoader>(run_.splits.labeled, labeled_options_, run_.splits.unlabeled,
                                           unlabeled_options_, state);
  const ShardedSampler sampler(run_.splits.unlabeled->size(), true, 0, unlabeled_options_.rank, unlabeled_options_.world_size);
  step_ = batches_done(state, static_cast<int64_t>(sampler.per_rank()) / unlabeled_options_.batch_size,
                       unlabeled_options_.batch_size);
}

SemiBatch SemiTask::next_batch() {
  Batch labeled, unlabeled;
  loader_->next(labeled, unlabeled);
  if (!labeled.masks.defined()) throw_usage("the labeled images need masks");
  ++step_;
  draws_ = 0;
  SemiBatch out;
  out.images = labeled.images.to(run_.device);
  out.labels = labeled.masks.to(run_.device);
  out.weak = unlabeled.images.to(run_.device);
  for (auto& view : unlabeled.strong) out.strong.push_back(view.to(run_.device));
  out.ignored = unlabeled.masks.to(run_.device).eq(ignore_index_);
  return out;
}

at::Tensor SemiTask::follow_mix(const at::Tensor& target, const at::Tensor& mask) {
  return mix(target, target.roll(1, 0), mask);
}

std::mt19937_64 SemiTask::step_rng(uint64_t salt) {
  return std::mt19937_64(mix_seed({seed_, static_cast<uint64_t>(step_), static_cast<uint64_t>(draws_++), salt}));
}

MixedView SemiTask::cutmix(const at::Tensor& images, const CutMixOptions& options) {
  if (images.size(0) < 2)  // the partner is the next image of the batch: alone, an image would mix with itself
    throw_usage("CutMix needs at least 2 unlabeled images per rank (semi.unlabeled_batch_size / ranks)");
  std::mt19937_64 rng = step_rng(0xc07);
  MixedView out;
  out.mask = cutmix_boxes(images.size(0), images.size(2), images.size(3), options, rng).to(images.device());
  out.images = follow_mix(images, out.mask);
  return out;
}

at::Tensor SemiTask::supervised_loss(const at::Tensor& logits, const at::Tensor& labels) const {
  return torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index_));
}

}  // namespace lesseg
