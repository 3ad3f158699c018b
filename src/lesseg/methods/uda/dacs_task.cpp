// ref: Tranheden et al. 2021, "DACS: Domain Adaptation via Cross-domain Mixed Sampling"; facts from
// lhoyer/DAFormer mmseg/models/uda/dacs.py (specs/uda.md).
#include "lesseg/methods/uda/dacs_task.h"

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/engine/ema.h"
#include "lesseg/nn/functional.h"

namespace lesseg {

DacsTask::DacsTask(const Config& config, const SegmentationRun& run, Segmenter student, Segmenter teacher)
    : SemiTask(config, run, 0), modules_(std::make_shared<torch::nn::Module>()), student_(std::move(student)),
      teacher_(std::move(teacher)) {
  modules_->register_module("student", student_);
  modules_->register_module("teacher", teacher_);
  copy_weights(*teacher_, *student_);
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  mix_ = config.get<bool>("dacs.mix");
  threshold_ = config.get<double>("dacs.threshold");
  ema_ = config.get<double>("dacs.ema");
  ignore_top_ = config.get<int64_t>("dacs.ignore_top");
  ignore_bottom_ = config.get<int64_t>("dacs.ignore_bottom");
  jitter_.jitter_strength = config.get<double>("dacs.jitter_strength");
  jitter_.blur_probability = config.get<bool>("dacs.blur") ? 0.5 : 0.0;
  mean_ = config_triple(config, "data.mean");
  std_ = config_triple(config, "data.std");
  if (threshold_ < 0 || threshold_ > 1) throw_usage("dacs.threshold must be in [0, 1]");
  if (ema_ < 0 || ema_ >= 1) throw_usage("dacs.ema must be in [0, 1)");
  if (ignore_top_ < 0 || ignore_bottom_ < 0) throw_usage("dacs.ignore_top / dacs.ignore_bottom must be >= 0");
  if (jitter_.jitter_strength < 0 || jitter_.jitter_strength > 0.5) throw_usage("dacs.jitter_strength must be in [0, 0.5]");
  const int64_t source_batch = config.get<int>("train.batch_size"), target_batch = config.get<int>("semi.unlabeled_batch_size");
  if (target_batch != 0 && target_batch != source_batch)
    throw_usage("ClassMix pairs source image i with target image i: semi.unlabeled_batch_size must be 0 or train.batch_size");
}

std::vector<torch::Tensor> DacsTask::trainable_parameters() {
  std::vector<torch::Tensor> out = student_->parameters();
  out.insert(out.end(), extra_trainable_.begin(), extra_trainable_.end());
  return out;
}

void DacsTask::prepare_student() {
  student_->train();
  if (freeze_bn_) freeze_batchnorm(*student_);
}

TargetLabel DacsTask::teacher_label(const at::Tensor& target, const at::Tensor& ignored) {
  torch::NoGradGuard no_grad;
  teacher_->train();  // as DAFormer's EMA model: BatchNorm on the target batch's statistics
  if (freeze_bn_) freeze_batchnorm(*teacher_);
  TargetLabel out;
  out.label = pseudo_label(torch::softmax(teacher_->forward(target), 1));
  out.weight = confident_fraction(out.label, threshold_, ignored);
  out.label.label = out.label.label.masked_fill(ignored, ignore_index_);
  return out;
}

ClassMixed DacsTask::class_mix(const at::Tensor& source, const at::Tensor& source_labels, const at::Tensor& target,
                               const TargetLabel& target_label) {
  if (source.size(0) != target.size(0) || source.sizes() != target.sizes())
    throw_usage("ClassMix needs source and target batches of the same size (data.crop applies to both)");
  std::mt19937_64 rng = step_rng(0xc1a5);
  ClassMixed out;
  out.mask = classmix_masks(source_labels, ignore_index_, rng);
  // Target pixels weigh the confident fraction; the rows DAFormer leaves out (ego car, sky
  // artefacts in Cityscapes crops) weigh 0; source pixels 1.
  at::Tensor target_weight = torch::full(target_label.label.label.sizes(), target_label.weight,
                                         source.options().dtype(torch::kFloat));
  const int64_t height = target_weight.size(1);
  if (ignore_top_ > 0) target_weight.slice(1, 0, std::min(ignore_top_, height)).zero_();
  if (ignore_bottom_ > 0) target_weight.slice(1, std::max<int64_t>(0, height - ignore_bottom_)).zero_();
  out.weights = mix(target_weight, torch::ones_like(target_weight), out.mask);
  out.labels = mix(target_label.label.label, source_labels, out.mask);
  out.images = jitter_and_blur(mix(target, source, out.mask), mean_, std_, jitter_, rng);
  return out;
}

LossTerms DacsTask::train_step(int64_t) {
  prepare_student();
  SemiBatch batch = next_batch();
  at::Tensor loss_source = supervised_loss(student_->forward(batch.images), batch.labels);
  if (!mix_) return {{"source", loss_source}};
  const TargetLabel target = teacher_label(batch.weak, batch.ignored);
  const ClassMixed mixed = class_mix(batch.images, batch.labels, batch.weak, target);
  at::Tensor loss_mix = weighted_cross_entropy(student_->forward(mixed.images), mixed.labels, mixed.weights, ignore_index_);
  return {{"source", loss_source}, {"mix", loss_mix}};
}

double DacsTask::teacher_momentum(int64_t iter) const {
  const double steps = double(iter + 1);
  return std::min(1.0 - 1.0 / (steps + 1.0), ema_);
}

void DacsTask::after_step(int64_t iter) { ema_update(*teacher_, *student_, teacher_momentum(iter)); }

}  // namespace lesseg
