#pragma once
// Class-agnostic COCO instance evaluation (the definitions of cocoapi's COCOeval, which is not
// packaged here): mask or box AP over IoU 0.50:0.05:0.95 with 101-point interpolated precision,
// AP50, AP75, AP small / medium / large, AR@1 / 10 / 100, crowd regions and area ranges as COCO.
// Every prediction and ground-truth instance counts as one category ("object").
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lesseg/io/coco.h"

namespace lesseg {

enum class InstanceIou { mask, box };

struct InstanceEvalOptions {
  InstanceIou iou = InstanceIou::mask;
  std::array<int, 3> max_dets{1, 10, 100};
};

// One image's instances for the evaluator.
struct EvalInstance {
  rle::Rle mask;
  std::array<double, 4> box{};  // [x, y, w, h] (from the mask)
  double area = 0;     // ground truth: the annotation's stored area (COCO); predictions: the mask's
  double score = 1;    // predictions only
  bool crowd = false;  // ground truth only
  int64_t category = 0;
};

struct InstanceMetrics {
  // AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl as COCOeval.summarize; -1
  // where nothing was countable (no ground truth in that area range).
  std::map<std::string, double> values;
  int64_t images = 0, ground_truth = 0, predictions = 0;
};

// One image's annotations as the evaluator sees them: ground truth keeps its stored area and crowd
// flag; a prediction's area is its mask's, its score the stored one (1 when absent).
std::vector<EvalInstance> coco_instances(const coco::Dataset& data, const coco::Image& image, bool prediction);

// ground_truth[i] / predictions[i] belong to the same image.
InstanceMetrics evaluate_instances(const std::vector<std::vector<EvalInstance>>& ground_truth,
                                   const std::vector<std::vector<EvalInstance>>& predictions,
                                   const InstanceEvalOptions& options = {});

// Mean recall over IoU 0.50:0.05:0.95 with every prediction kept (no maximum), split into images
// with >= 2 non-crowd instances of one category ("multi_instance") and the rest ("single") — the
// instance-ness probe of Engstler et al.; also "all". NaN where a split has no ground truth.
std::map<std::string, double> mean_average_recall_split(const std::vector<std::vector<EvalInstance>>& ground_truth,
                                                        const std::vector<std::vector<EvalInstance>>& predictions,
                                                        InstanceIou iou = InstanceIou::mask);

// Reads ground truth (COCO instances JSON) and predictions (a COCO instances JSON as `lesseg
// pseudo` writes, matched to the ground truth by file_name; or a COCO results list
// [{image_id, segmentation, score}], matched by image id). Predictions for an image the ground
// truth does not have are an error; ground-truth images without predictions count as misses.
struct InstancePairs {
  std::vector<std::vector<EvalInstance>> ground_truth, predictions;
};
InstancePairs read_instance_pairs(const std::filesystem::path& ground_truth_json,
                                  const std::filesystem::path& predictions_json);

nlohmann::json instance_metrics_json(const InstanceMetrics& mask, const InstanceMetrics& box,
                                     const std::map<std::string, double>& mar);

}  // namespace lesseg
