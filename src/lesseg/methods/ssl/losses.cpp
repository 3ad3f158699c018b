#include "lesseg/methods/ssl/losses.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

namespace F = torch::nn::functional;

torch::Tensor nt_xent(const torch::Tensor& a, const torch::Tensor& b, double temperature) {
  const int64_t n = a.size(0);
  auto z = F::normalize(torch::cat({a, b}), F::NormalizeFuncOptions().dim(1));
  auto logits = torch::matmul(z, z.t()) / temperature;
  // a view is never its own negative
  logits = logits.masked_fill(torch::eye(2 * n, torch::TensorOptions().dtype(torch::kBool).device(z.device())),
                              -std::numeric_limits<float>::infinity());
  auto index = torch::arange(2 * n, torch::TensorOptions().dtype(torch::kLong).device(z.device()));
  auto positives = torch::cat({index.slice(0, n), index.slice(0, 0, n)});  // view i <-> view i +- n
  return F::cross_entropy(logits, positives);
}

torch::Tensor multi_view_nt_xent(const std::vector<torch::Tensor>& views, int64_t num_global, double temperature) {
  if (views.size() < 2 || num_global < 1) throw Error(ExitCode::usage, "NT-Xent needs at least two views, one global");
  torch::Tensor total;
  int64_t pairs = 0;
  for (int64_t i = 0; i < num_global; ++i)
    for (size_t j = static_cast<size_t>(i) + 1; j < views.size(); ++j, ++pairs) {
      auto loss = nt_xent(views[i], views[j], temperature);
      total = total.defined() ? total + loss : loss;
    }
  return total / static_cast<double>(pairs);
}

DinoLossImpl::DinoLossImpl(int64_t out_dim, double student_temp, double center_momentum)
    : student_temp_(student_temp), center_momentum_(center_momentum) {
  center = register_buffer("center", torch::zeros({1, out_dim}));
}

torch::Tensor DinoLossImpl::forward(const std::vector<torch::Tensor>& student, const std::vector<torch::Tensor>& teacher,
                                    double teacher_temp, Distributed* dist) {
  torch::Tensor total;
  int64_t pairs = 0;
  for (size_t t = 0; t < teacher.size(); ++t) {
    auto q = F::softmax((teacher[t].detach() - center) / teacher_temp, F::SoftmaxFuncOptions(-1));
    for (size_t s = 0; s < student.size(); ++s) {
      if (s == t) continue;  // the same crop seen by both networks is skipped
      auto loss = torch::sum(-q * F::log_softmax(student[s] / student_temp_, F::LogSoftmaxFuncOptions(-1)), -1).mean();
      total = total.defined() ? total + loss : loss;
      ++pairs;
    }
  }
  update_center(teacher, dist);
  return total / static_cast<double>(pairs);
}

void DinoLossImpl::update_center(const std::vector<torch::Tensor>& teacher, Distributed* dist) {
  torch::NoGradGuard no_grad;
  auto outputs = torch::cat(teacher);
  auto batch_center = outputs.sum(0, /*keepdim=*/true);
  double count = static_cast<double>(outputs.size(0));
  if (dist) {
    dist->all_reduce_sum(batch_center);
    count *= dist->world_size();
  }
  center.mul_(center_momentum_).add_(batch_center / count, 1.0 - center_momentum_);
}

DinoDiagnostics dino_diagnostics(const torch::Tensor& teacher, const torch::Tensor& student, const torch::Tensor& center,
                                 double teacher_temp, double student_temp) {
  torch::NoGradGuard no_grad;
  auto log_t = F::log_softmax((teacher - center) / teacher_temp, F::LogSoftmaxFuncOptions(-1));
  auto log_s = F::log_softmax(student / student_temp, F::LogSoftmaxFuncOptions(-1));
  auto p_t = log_t.exp();
  auto mean_t = p_t.mean(0);
  DinoDiagnostics d;
  d.teacher_entropy = (-(p_t * log_t).sum(-1)).mean().item<double>();
  d.teacher_batch_entropy = (-(mean_t * mean_t.clamp_min(1e-12).log()).sum()).item<double>();
  d.kl_teacher_student = (p_t * (log_t - log_s)).sum(-1).mean().item<double>();
  return d;
}

double normalized_feature_std(const torch::Tensor& z) {
  torch::NoGradGuard no_grad;
  return F::normalize(z, F::NormalizeFuncOptions().dim(1)).std(0).mean().item<double>();
}

}  // namespace lesseg
