#include "lesseg/engine/ema.h"

#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

double ema_momentum(double base, int64_t iter, int64_t total) {
  const double progress = std::min(1.0, double(iter) / double(std::max<int64_t>(1, total)));
  return 1.0 - (1.0 - base) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

namespace {
void require_same_structure(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) throw Error(ExitCode::internal, "EMA teacher and student differ in structure");
  for (size_t i = 0; i < a.size(); ++i)
    if (!a[i].sizes().equals(b[i].sizes())) throw Error(ExitCode::internal, "EMA teacher and student differ in structure");
}
}  // namespace

void ema_update(torch::nn::Module& teacher, const torch::nn::Module& student, double momentum) {
  torch::NoGradGuard no_grad;
  auto t_params = teacher.parameters(), s_params = student.parameters();
  require_same_structure(t_params, s_params);
  for (size_t i = 0; i < t_params.size(); ++i) t_params[i].mul_(momentum).add_(s_params[i].detach(), 1.0 - momentum);
}

void copy_weights(torch::nn::Module& teacher, const torch::nn::Module& student) {
  torch::NoGradGuard no_grad;
  auto t_params = teacher.parameters(), s_params = student.parameters();
  auto t_buffers = teacher.buffers(), s_buffers = student.buffers();
  require_same_structure(t_params, s_params);
  require_same_structure(t_buffers, s_buffers);
  for (size_t i = 0; i < t_params.size(); ++i) t_params[i].copy_(s_params[i]);
  for (size_t i = 0; i < t_buffers.size(); ++i) t_buffers[i].copy_(s_buffers[i]);
}

}  // namespace lesseg
