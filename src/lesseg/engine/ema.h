#pragma once
// Exponential moving average of a student's weights (DINO's teacher, mean teachers).
#include <cstdint>

#include <torch/nn/module.h>

namespace lesseg {

// ref: dino main_dino.py momentum_schedule: cosine from `base` at iteration 0 to 1 at `total`.
double ema_momentum(double base, int64_t iter, int64_t total);

// teacher = momentum * teacher + (1 - momentum) * student for every parameter (same structure).
// Buffers are left alone, as in DINO's momentum update: a teacher run in training mode keeps
// BatchNorm statistics of its own inputs.
void ema_update(torch::nn::Module& teacher, const torch::nn::Module& student, double momentum);

// teacher = student, parameters and buffers (the teacher's start, DINO's load_state_dict).
void copy_weights(torch::nn::Module& teacher, const torch::nn::Module& student);

}  // namespace lesseg
