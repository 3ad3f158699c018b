#pragma once
// Confusion-matrix segmentation metrics (mmseg / detectron2 style evaluator: reset, process, compute).
#include <vector>

#include <ATen/core/Tensor.h>

namespace lesseg {

struct SegMetrics {
  double miou = 0, macc = 0, pixel_acc = 0;
  std::vector<double> iou;       // per class; NaN for classes absent from both prediction and truth
  std::vector<double> accuracy;  // per class recall; NaN for classes absent from the truth
};

class ConfusionMatrix {
 public:
  ConfusionMatrix(int64_t num_classes, int64_t ignore_index);
  void reset();
  // predictions, targets: integer tensors of the same shape; targets == ignore_index are skipped.
  void process(const at::Tensor& predictions, const at::Tensor& targets);
  SegMetrics compute() const;
  // Adds a [C,C] count matrix (e.g. the sum over the ranks of a distributed evaluation).
  void add_counts(const at::Tensor& counts);
  const at::Tensor& matrix() const { return matrix_; }  // [truth, prediction] int64 counts (CPU)

 private:
  int64_t num_classes_, ignore_index_;
  at::Tensor matrix_;
};

}  // namespace lesseg
