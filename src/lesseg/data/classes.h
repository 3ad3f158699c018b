#pragma once
// Class names, colours and the ignore index of a semantic segmentation dataset.
#include <filesystem>
#include <string>
#include <vector>

#include "lesseg/io/image_io.h"

namespace lesseg {

struct ClassInfo {
  std::vector<std::string> names;
  Palette colors;          // one RGB colour per class (same length as names)
  int ignore_index = 255;  // label value that is never scored

  int num_classes() const { return static_cast<int>(names.size()); }
};

// classes.yaml: {names: [..], colors: [[r,g,b], ..] (optional), ignore_index: 255 (optional)}
ClassInfo load_classes_yaml(const std::filesystem::path& path);
void save_classes_yaml(const std::filesystem::path& path, const ClassInfo& classes);
// A distinct, stable colour for class i (used when a dataset brings no colours).
std::array<uint8_t, 3> default_class_color(int i);
// The standard PASCAL VOC bit-interleave colour map for 256 indices.
Palette voc_palette();

}  // namespace lesseg
