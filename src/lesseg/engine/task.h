#pragma once
// What a method gives the engine: its modules, one training step, and an evaluation.
// The engine owns the loop, the optimizer, the schedule, checkpoints and logs.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include "lesseg/data/sampler.h"
#include "lesseg/engine/optim.h"

namespace lesseg {

// Named loss terms; the engine backpropagates their sum and logs each.
using LossTerms = std::vector<std::pair<std::string, torch::Tensor>>;

// Another optimizer the engine steps each iteration beside the main one (CUT's generator and
// discriminator next to a segmenter): the loss terms named "<name>/..." train `parameters` only and
// every other term trains trainable_parameters() only; each has its own settings and schedule, and
// its state is in the checkpoints.
struct TaskOptimizer {
  std::string name;
  std::vector<torch::Tensor> parameters;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // Every module whose tensors a checkpoint must hold (student, teachers, heads).
  virtual torch::nn::Module& state_module() = 0;
  // Parameters the optimizer updates.
  virtual std::vector<torch::Tensor> trainable_parameters() = 0;
  // Those of trainable_parameters() exempt from weight decay (biases and norms, in DINO and MAE).
  virtual std::vector<torch::Tensor> no_weight_decay_parameters() { return {}; }
  // Those of trainable_parameters() in pretrained backbones; the others (heads, decoders) train at
  // train.head_lr_multiplier x the lr. Empty: the method has no such split (a multiplier is refused).
  virtual std::vector<torch::Tensor> backbone_parameters() { return {}; }
  // Optimizers beside the main one (see TaskOptimizer); none by default.
  virtual std::vector<TaskOptimizer> other_optimizers() { return {}; }
  // Called after the gradients are ready (averaged across ranks, clipped), before the optimizer step.
  virtual void after_backward(int64_t /*iter*/) {}
  // Called after the optimizer step (e.g. to update an EMA teacher).
  virtual void after_step(int64_t /*iter*/) {}
  // Draws the next batch itself and returns its losses (graph attached).
  virtual LossTerms train_step(int64_t iter) = 0;
  // Metrics on the validation split, e.g. {"miou": .., "macc": .., "iou": [..]} or {"knn_top1": ..}.
  virtual nlohmann::json evaluate() = 0;
  // The split evaluate() measures, as metrics.jsonl names it: "val", or "holdout" (data.holdout).
  virtual std::string evaluation_split() const { return "val"; }
  // Loader position, saved in checkpoints and restored on resume.
  virtual SamplerState loader_state() const = 0;
  virtual void restore(SamplerState state) = 0;
  // Images in one training step (for throughput).
  virtual int64_t images_per_step() const = 0;
};

}  // namespace lesseg
