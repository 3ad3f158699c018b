// PASCAL VOC 2012 (+ SBD "SegmentationClassAug"): palette-PNG labels read as indices.
#include <sstream>

#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {
using namespace formats;

ClassInfo voc_classes() {
  ClassInfo info;
  info.names = {"background", "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",
                "car",        "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",
                "motorbike",  "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};
  const Palette palette = voc_palette();
  info.colors.assign(palette.begin(), palette.begin() + long(info.names.size()));
  info.ignore_index = 255;
  return info;
}

// root may be VOC2012 itself, its parent, or VOCdevkit's parent.
fs::path voc_base(const fs::path& root) {
  std::error_code ec;
  for (const fs::path& candidate : {root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"})
    if (fs::is_directory(candidate / "JPEGImages", ec)) return candidate;
  throw_bad_input(root, "no JPEGImages folder here, in VOC2012/ or in VOCdevkit/VOC2012/");
}

// The SBD-augmented masks replace the originals when present (they cover the same val images).
fs::path mask_for(const fs::path& base, const std::string& id) {
  const fs::path aug = base / "SegmentationClassAug" / (id + ".png");
  const fs::path plain = base / "SegmentationClass" / (id + ".png");
  std::error_code ec;
  if (fs::exists(aug, ec)) return aug;
  if (fs::exists(plain, ec) || !fs::is_directory(aug.parent_path(), ec)) return plain;
  return aug;
}

// A line is an image id, or "image mask" paths relative to the VOC folder (DeepLab's train_aug.txt).
SegItem voc_item(const fs::path& base, const std::string& line) {
  std::istringstream fields(line);
  std::string first, second;
  fields >> first >> second;
  auto under_base = [&](const std::string& p) { return base / fs::path(p).relative_path(); };
  if (!second.empty()) return {under_base(first), under_base(second)};
  return {base / "JPEGImages" / (first + ".jpg"), mask_for(base, first)};
}

}  // namespace

SegDatasetPtr open_voc(const fs::path& root, const std::string& split) {
  const fs::path base = voc_base(root);
  const fs::path list = base / "ImageSets" / "Segmentation" / (split + ".txt");
  std::vector<SegItem> items;
  for (const auto& line : read_name_list(list)) items.push_back(voc_item(base, line));
  return make_dataset(std::move(items), voc_classes(), identity_mapper(), list);
}

}  // namespace lesseg
