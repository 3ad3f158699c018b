#pragma once
// Runs a segmenter over a labeled dataset and scores it (mIoU, mAcc, per-class IoU).
#include <nlohmann/json.hpp>

#include "lesseg/data/loader.h"
#include "lesseg/eval/confusion.h"
#include "lesseg/models/backbone.h"

namespace lesseg {

struct EvalOptions {
  int batch_size = 8;
  int64_t max_images = 0;  // 0 = all
  AugmentOptions augment;  // resize only
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  torch::Device device = torch::kCPU;
  int rank = 0, world_size = 1;
  std::vector<int> scored_classes;  // eval.classes as indices; empty: all  // distributed: this rank scores images rank, rank + world_size, ...
};

// The confusion matrix of this rank's images (sum it over the ranks for the whole split).
ConfusionMatrix evaluate_segmenter(Segmenter& model, SegDatasetPtr dataset, const EvalOptions& options);
// {"miou", "macc", "pixel_acc", "iou": [...], "classes": [...]}. With `scored` (class indices), mIoU and
// mAcc average those classes only (SYNTHIA -> Cityscapes: 16 of 19) and "scored_classes" names them.
nlohmann::json metrics_json(const SegMetrics& metrics, const ClassInfo& classes, const std::vector<int>& scored = {});

class Config;
// eval.classes: the names of the classes mIoU averages ([] = all), as indices of `classes`; a usage
// error names an unknown one.
std::vector<int> scored_classes_from(const Config& config, const ClassInfo& classes);

}  // namespace lesseg
