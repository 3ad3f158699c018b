#include "lesseg/methods/uda/prototypes.h"

#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

PrototypeBankImpl::PrototypeBankImpl(int64_t num_classes, int64_t dim) {
  prototypes_ = register_buffer("prototypes", torch::zeros({num_classes, dim}));
  seen_ = register_buffer("seen", torch::zeros({num_classes}, torch::kBool));
}

void PrototypeBankImpl::update(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& scores,
                               int64_t top_k, double momentum, int64_t ignore_index) {
  torch::NoGradGuard no_grad;
  if (features.dim() != 2 || features.size(1) != prototypes_.size(1) || labels.sizes() != features.select(1, 0).sizes())
    throw_usage("prototype update: features [N, D] with the bank's D and labels [N]");
  const int64_t classes = prototypes_.size(0);
  for (int64_t c = 0; c < classes; ++c) {
    if (c == ignore_index) continue;
    const auto rows = labels.eq(c).nonzero().flatten();
    if (rows.numel() == 0) continue;
    at::Tensor chosen = rows, weights;
    if (scores.defined()) {
      const auto class_scores = scores.index_select(0, rows).select(1, c);
      auto [top, order] = class_scores.topk(std::min<int64_t>(top_k, rows.numel()));
      chosen = rows.index_select(0, order);
      weights = top.clamp_min(0);
    } else {
      chosen = rows.slice(0, 0, std::min<int64_t>(top_k, rows.numel()));
      weights = torch::ones({chosen.numel()}, features.options());
    }
    if (weights.sum().item<double>() <= 0) weights = torch::ones_like(weights);  // CAM all 0: uniform
    auto mean = (features.index_select(0, chosen) * weights.unsqueeze(1)).sum(0) / weights.sum();
    mean = mean / mean.norm().clamp_min(1e-12);
    if (!seen_[c].item<bool>()) {
      prototypes_[c].copy_(mean);
      seen_[c].fill_(true);
    } else {
      auto moved = momentum * prototypes_[c] + (1 - momentum) * mean;
      prototypes_[c].copy_(moved / moved.norm().clamp_min(1e-12));
    }
  }
}

at::Tensor prototype_contrast(const at::Tensor& features, const at::Tensor& labels, const PrototypeBank& bank,
                              double tau, int64_t ignore_index, const at::Tensor& weights) {
  const auto seen = bank->seen();
  auto valid = labels.ne(ignore_index).logical_and(labels.ge(0)).logical_and(labels.lt(seen.size(0)));
  valid = valid.logical_and(seen.index({labels.clamp(0, seen.size(0) - 1)}));
  if (!valid.any().item<bool>()) return features.sum() * 0;  // keeps the graph; nothing to pull
  const auto rows = valid.nonzero().flatten();
  // Classes without a prototype take no part in the softmax.
  // A copy: the bank moves on in place during the step (prototypes are constants to the loss).
  auto logits = features.index_select(0, rows).matmul(bank->prototypes().clone().t()) / tau;
  logits = logits.masked_fill(seen.logical_not().unsqueeze(0), -1e4);
  auto per_pixel = torch::nn::functional::cross_entropy(
      logits, labels.index_select(0, rows), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  if (weights.defined()) per_pixel = per_pixel * weights.index_select(0, rows);
  return per_pixel.mean();
}

at::Tensor prototype_diversity(const at::Tensor& features, const PrototypeBank& bank, double tau) {
  const auto seen = bank->seen();
  const int64_t count = seen.sum().item<int64_t>();
  if (count < 2 || features.size(0) == 0) return features.sum() * 0;
  const auto rows = seen.nonzero().flatten();
  const auto mean = torch::softmax(features.matmul(bank->prototypes().index_select(0, rows).clone().t()) / tau, 1).mean(0);
  return (mean * mean.clamp_min(1e-12).log()).sum() / (double(count) * std::log(double(count)));
}

}  // namespace lesseg
