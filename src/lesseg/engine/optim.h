#pragma once
// Optimizers and iteration-based learning-rate schedules (the papers schedule by iteration).
#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

namespace lesseg {

struct OptimizerOptions {
  std::string name = "sgd";  // sgd | adamw
  double lr = 0.01, momentum = 0.9, weight_decay = 1e-4;
  double beta1 = 0.9, beta2 = 0.999;  // AdamW
  double weight_decay_end = -1;       // < 0: constant; else cosine from weight_decay to this (DINO)
  double head_lr_multiplier = 1;      // the head's lr relative to the backbone's (UniMatch on VOC: 10)
};

// A torch optimizer and what the schedules need to know about each of its parameter groups.
struct ScheduledOptimizer {
  std::unique_ptr<torch::optim::Optimizer> torch;
  std::vector<double> lr_scale;  // per group: multiplies the scheduled lr
  std::vector<bool> decays;      // per group: follows the weight-decay schedule
  torch::optim::Optimizer* operator->() const { return torch.get(); }
  torch::optim::Optimizer& operator*() const { return *torch; }
};

// Groups: the parameters that decay and those in `no_decay` that do not; with head_lr_multiplier != 1
// the `head` parameters (a subset of `parameters`) get their own two groups at the multiplied lr.
ScheduledOptimizer make_optimizer(const std::vector<torch::Tensor>& parameters, const OptimizerOptions& options,
                                  const std::vector<torch::Tensor>& no_decay = {},
                                  const std::vector<torch::Tensor>& head = {});

struct ScheduleOptions {
  std::string name = "poly";  // poly | cosine | constant
  int64_t total_iters = 1;
  int64_t warmup_iters = 0;  // linear warmup from 0
  double power = 0.9;        // poly exponent
};

// Learning-rate factor (multiplies the base lr) at iteration `iter` (0-based).
double lr_factor(const ScheduleOptions& options, int64_t iter);
// Each group's lr: `lr` times its scale.
void set_learning_rate(ScheduledOptimizer& optimizer, double lr);
// Weight decay at iteration `iter` (cosine to weight_decay_end when set), applied to the decaying groups.
double weight_decay_at(const OptimizerOptions& options, int64_t iter, int64_t total_iters);
void set_weight_decay(ScheduledOptimizer& optimizer, double weight_decay);

// Scales gradients down to norm <= max_norm: one norm over all of them (torch clip_grad_norm_), or
// each tensor on its own (ref: dino utils.clip_gradients, coefficient max_norm / (norm + 1e-6)).
void clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm, bool per_parameter);

// Optimizer state as named tensors ("optim.<param index>.<field>") for checkpoints, and back.
std::vector<std::pair<std::string, torch::Tensor>> optimizer_state_tensors(torch::optim::Optimizer& optimizer);
void load_optimizer_state(torch::optim::Optimizer& optimizer,
                          const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace lesseg
