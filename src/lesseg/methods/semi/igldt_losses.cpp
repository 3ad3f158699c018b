#include "lesseg/methods/semi/igldt_losses.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

namespace {
// Same batch and width; the grids may differ (pooling makes them comparable).
void require_same(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.dim() != 4 || b.dim() != 4 || a.size(0) != b.size(0) || a.size(1) != b.size(1))
    throw Error(ExitCode::internal, std::string(what) + ": student and teacher features differ in batch or width");
}
}  // namespace

at::Tensor global_context_loss(const at::Tensor& student, const at::Tensor& teacher) {
  require_same(student, teacher, "global_context_loss");
  return (student.mean({2, 3}) - teacher.mean({2, 3})).abs().mean();
}

at::Tensor local_regional_loss(const at::Tensor& student, const at::Tensor& teacher, int64_t grid) {
  require_same(student, teacher, "local_regional_loss");
  if (grid < 1) throw_usage("the local region grid must be >= 1");
  namespace F = torch::nn::functional;
  auto pool = F::AdaptiveAvgPool2dFuncOptions({grid, grid});
  return (F::adaptive_avg_pool2d(student, pool) - F::adaptive_avg_pool2d(teacher, pool)).abs().mean();
}

at::Tensor discrepancy_loss(const at::Tensor& student_logits, const at::Tensor& global_probs,
                            const at::Tensor& local_probs, const at::Tensor& ignored) {
  auto [c_g, y_g] = global_probs.detach().max(1);
  auto [c_l, y_l] = local_probs.detach().max(1);
  at::Tensor valid = ignored.defined() ? ignored.logical_not() : torch::ones_like(y_g, torch::kBool);
  at::Tensor disagree = y_g.ne(y_l).logical_and(valid);
  at::Tensor log_p = torch::log_softmax(student_logits, 1);
  at::Tensor ce_g = -log_p.gather(1, y_g.unsqueeze(1)).squeeze(1);
  at::Tensor ce_l = -log_p.gather(1, y_l.unsqueeze(1)).squeeze(1);
  at::Tensor total = c_g + c_l;
  at::Tensor per_pixel = (c_g / total) * ce_g + (c_l / total) * ce_l;
  return (per_pixel * disagree.to(per_pixel.dtype())).sum() / valid.sum().clamp_min(1).to(per_pixel.dtype());
}

}  // namespace lesseg
