#pragma once
// A trained segmenter as one safetensors file: weights plus, in its metadata, the model spec, the
// classes and the input normalization, so predict/eval can rebuild it from the file alone.
#include <filesystem>

#include "lesseg/data/classes.h"
#include "lesseg/data/transforms.h"
#include "lesseg/models/registry.h"

namespace lesseg {

struct SavedSegmenter {
  Segmenter model{nullptr};
  ModelSpec spec;
  ClassInfo classes;
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  int resize_h = 0, resize_w = 0;  // the eval-time resize it was trained with
};

void save_segmenter(const std::filesystem::path& path, const SavedSegmenter& saved);
SavedSegmenter load_segmenter(const std::filesystem::path& path, torch::Device device);

}  // namespace lesseg
