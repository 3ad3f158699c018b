#include "lesseg/methods/common/pseudo_label.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

PseudoLabel pseudo_label(const at::Tensor& probabilities) {
  if (probabilities.dim() != 4) throw_usage("pseudo_label needs class probabilities [B, C, H, W]");
  auto [confidence, label] = probabilities.detach().max(1);
  return {label, confidence};
}

at::Tensor confident_cross_entropy(const at::Tensor& logits, const PseudoLabel& target, double threshold,
                                   const at::Tensor& ignored) {
  if (logits.dim() != 4 || target.label.sizes() != logits.select(1, 0).sizes())
    throw_usage("confident_cross_entropy: logits [B, C, H, W] and a pseudo-label [B, H, W] of the same size");
  auto per_pixel = torch::nn::functional::cross_entropy(
      logits, target.label, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  auto kept = target.confidence.ge(threshold);
  auto valid = torch::ones_like(kept);
  if (ignored.defined()) {
    valid = ignored.logical_not();
    kept = kept.logical_and(valid);
  }
  return (per_pixel * kept.to(per_pixel.dtype())).sum() / valid.sum().clamp_min(1).to(per_pixel.dtype());
}

double confident_fraction(const PseudoLabel& target, double threshold, const at::Tensor& ignored) {
  auto kept = target.confidence.ge(threshold);
  if (!ignored.defined()) return kept.to(torch::kDouble).mean().item<double>();
  const auto valid = ignored.logical_not();
  const double count = valid.sum().item<double>();
  return count == 0 ? 0.0 : kept.logical_and(valid).sum().item<double>() / count;
}

at::Tensor weighted_cross_entropy(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& weights,
                                  int64_t ignore_index) {
  if (logits.dim() != 4 || labels.sizes() != logits.select(1, 0).sizes() || weights.sizes() != labels.sizes())
    throw_usage("weighted_cross_entropy: logits [B, C, H, W], labels and weights [B, H, W]");
  auto per_pixel = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(ignore_index));
  return (per_pixel * weights.to(per_pixel.dtype())).mean();
}

}  // namespace lesseg
