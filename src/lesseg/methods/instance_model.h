#pragma once
// A trained instance segmenter (SOLOv2) as one safetensors file: weights plus, in its metadata, the
// backbone spec, the SOLOv2 and inference options and the input normalization, so predict / eval
// rebuild it from the file alone (lesseg.kind = "instance_segmenter").
#include <array>
#include <filesystem>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lesseg/io/coco.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/solov2.h"
#include "lesseg/models/solov2_ops.h"

namespace lesseg {

class Config;
class InstanceDataset;

struct InstanceInput {
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  int resize_h = 0, resize_w = 0;  // every image is resized to this first (0: kept)
  int max_size = 1333;             // else the longer side is capped here (SOLOv2 tests at 1333 x 800)
};

struct SavedInstanceModel {
  Solov2 model{nullptr};
  ModelSpec spec;  // the backbone
  Solov2Options solo;
  SoloTestOptions test;
  InstanceInput input;
};

// The config's solo.* / model.* / data.* keys.
Solov2Options solov2_options_from(const Config& config);
SoloTestOptions solo_test_options_from(const Config& config);
SoloTargetOptions solo_target_options_from(const Config& config);
SoloLossOptions solo_loss_options_from(const Config& config);  // with cutler.drop_loss / drop_iou
InstanceInput instance_input_from(const Config& config);

void save_instance_model(const std::filesystem::path& path, const SavedInstanceModel& saved);
SavedInstanceModel load_instance_model(const std::filesystem::path& path, c10::Device device);

// The instances of one RGB image at its own size: resized as `input` says, normalized, padded with
// zeros to multiples of 32, masks cropped back and resized to the image.
SoloInstances predict_instances(Solov2Impl& model, const cv::Mat& rgb, const InstanceInput& input,
                                const SoloTestOptions& test, c10::Device device);

// Runs the model on `files` (paths relative to `root`, which become the file_name entries) and
// returns a COCO instances dataset: compressed RLE at each image's size, one category "object",
// a score per mask, images numbered from 1 in file order. With overlay_dir set, writes
// <stem>_instances.png per image (each instance its own colour, its score written on it).
coco::Dataset predict_instance_files(SavedInstanceModel& saved, const std::filesystem::path& root,
                                     const std::vector<std::filesystem::path>& files, c10::Device device,
                                     const std::filesystem::path& overlay_dir = {});

// Class-agnostic COCO mask and box AP of the model on a ground-truth dataset (its first max_images
// images when > 0): {mask_ap, mask_ap50, mask_ap75, mask_ar100, box_ap, box_ap50, predictions}.
nlohmann::json evaluate_instance_model(SavedInstanceModel& saved, const InstanceDataset& truth, c10::Device device,
                                       int64_t max_images = 0);

// The image with each instance blended in its own colour, outlined, its score written at its top left.
cv::Mat instance_overlay(const cv::Mat& rgb, const SoloInstances& instances);

}  // namespace lesseg
