#include "lesseg/eval/confusion.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace lesseg {

ConfusionMatrix::ConfusionMatrix(int64_t num_classes, int64_t ignore_index)
    : num_classes_(num_classes), ignore_index_(ignore_index) {
  reset();
}

void ConfusionMatrix::reset() { matrix_ = torch::zeros({num_classes_, num_classes_}, torch::kLong); }

void ConfusionMatrix::process(const at::Tensor& predictions, const at::Tensor& targets) {
  TORCH_CHECK(predictions.sizes() == targets.sizes(), "prediction and target shapes differ");
  auto pred = predictions.flatten().to(torch::kLong);
  auto truth = targets.flatten().to(torch::kLong);
  auto valid = (truth != ignore_index_) & (truth >= 0) & (truth < num_classes_);
  auto index = truth.masked_select(valid) * num_classes_ + pred.masked_select(valid).clamp(0, num_classes_ - 1);
  auto counts = torch::bincount(index, {}, num_classes_ * num_classes_).view({num_classes_, num_classes_});
  matrix_ += counts.to(torch::kCPU);
}

void ConfusionMatrix::add_counts(const at::Tensor& counts) {
  TORCH_CHECK(counts.sizes() == matrix_.sizes(), "confusion counts have the wrong shape");
  matrix_ += counts.to(torch::kCPU, torch::kLong);
}

SegMetrics ConfusionMatrix::compute() const {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto m = matrix_.to(torch::kDouble);
  auto tp = m.diag(), truth = m.sum(1), predicted = m.sum(0);
  auto union_ = truth + predicted - tp;
  SegMetrics out;
  double iou_sum = 0, acc_sum = 0;
  int iou_n = 0, acc_n = 0;
  for (int64_t c = 0; c < num_classes_; ++c) {
    double u = union_[c].item<double>(), t = truth[c].item<double>(), p = tp[c].item<double>();
    out.iou.push_back(u > 0 ? p / u : nan);
    out.accuracy.push_back(t > 0 ? p / t : nan);
    if (u > 0) iou_sum += p / u, ++iou_n;
    if (t > 0) acc_sum += p / t, ++acc_n;
  }
  out.miou = iou_n ? iou_sum / iou_n : nan;
  out.macc = acc_n ? acc_sum / acc_n : nan;
  double total = m.sum().item<double>();
  out.pixel_acc = total > 0 ? tp.sum().item<double>() / total : nan;
  return out;
}

}  // namespace lesseg
