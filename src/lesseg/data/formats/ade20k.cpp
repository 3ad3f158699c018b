// ADE20K SceneParsing: ADEChallengeData2016/{images,annotations}/{training,validation}.
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {
using namespace formats;

constexpr int kAdeClasses = 150;

// "Reduce zero label": 0 ("other") is ignored, k becomes k - 1. Values above 150 are left
// past the class range so that validate_mask reports them instead of hiding them as ignore.
std::vector<uint8_t> reduce_zero_label() {
  std::vector<uint8_t> lut(256);
  lut[0] = 255;
  for (int v = 1; v < 256; ++v) lut[size_t(v)] = uint8_t(v - 1);
  return lut;
}

ClassInfo ade20k_classes() {
  ClassInfo info;
  for (int k = 0; k < kAdeClasses; ++k) {
    info.names.push_back("class_" + std::to_string(k));
    info.colors.push_back(default_class_color(k + 1));  // k + 1: keep black off class 0
  }
  return info;
}

// The folder holding images/ and annotations/: root itself or root/ADEChallengeData2016.
fs::path ade_base(const fs::path& root) {
  std::error_code ec;
  return fs::is_directory(root / "images", ec) ? root : root / "ADEChallengeData2016";
}

std::string ade_split(const std::string& split) {
  if (split == "train") return "training";
  if (split == "val") return "validation";
  return split;
}

}  // namespace

SegDatasetPtr open_ade20k(const fs::path& root, const std::string& split) {
  const fs::path base = ade_base(root);
  const std::string name = ade_split(split);
  const fs::path image_dir = base / "images" / name;
  require_dir(image_dir, "ADE20K image");
  std::vector<SegItem> items;
  for (const auto& image : list_files(image_dir, false, is_image_file))
    items.push_back({image, base / "annotations" / name / (image.stem().string() + ".png")});
  return make_dataset(std::move(items), ade20k_classes(), lut_mapper(reduce_zero_label()), image_dir);
}

}  // namespace lesseg
