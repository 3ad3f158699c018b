// CamVid (SegNet version): 11 classes, label 11 = void.
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {
using namespace formats;

ClassInfo camvid_classes() {
  ClassInfo info;
  info.names = {"Sky",        "Building", "Pole", "Road",       "Pavement", "Tree",
                "SignSymbol", "Fence",    "Car",  "Pedestrian", "Bicyclist"};
  info.colors = {{128, 128, 128}, {128, 0, 0},   {192, 192, 128}, {128, 64, 128},
                 {60, 40, 222},   {128, 128, 0}, {192, 128, 128}, {64, 64, 128},
                 {64, 0, 128},    {64, 64, 0},   {0, 128, 192}};
  info.ignore_index = 255;
  return info;
}

// 11 (void) -> 255; every other value passes through so that validate_mask reports stray ones.
std::vector<uint8_t> camvid_lut() {
  std::vector<uint8_t> lut(256);
  for (int v = 0; v < 256; ++v) lut[size_t(v)] = uint8_t(v);
  lut[11] = 255;
  return lut;
}

// Same-stem pairs of two folders (images in any format, labels as PNG).
std::vector<SegItem> folder_pairs(const fs::path& image_dir, const fs::path& label_dir) {
  std::vector<SegItem> items;
  for (const auto& image : list_files(image_dir, false, is_image_file))
    items.push_back({image, label_dir / (image.stem().string() + ".png")});
  return items;
}

}  // namespace

// Checked in this order: SegNet's {split}/ + {split}annot/ (its own {split}.txt holds absolute
// /SegNet/... paths, so it is not used), then a {split}.txt of "image label" lines relative to root,
// then {split}/images + {split}/labels.
SegDatasetPtr open_camvid(const fs::path& root, const std::string& split) {
  require_dir(root, "CamVid dataset");
  std::error_code ec;
  const fs::path annot = root / (split + "annot"), list = root / (split + ".txt");
  std::vector<SegItem> items;
  fs::path source;
  if (fs::is_directory(annot, ec)) {
    source = root / split;
    items = folder_pairs(source, annot);
  } else if (fs::exists(list, ec)) {
    source = list;
    items = read_split_list(list, root);
  } else {
    source = root / split / "images";
    require_dir(source, "CamVid image");
    items = folder_pairs(source, root / split / "labels");
  }
  return make_dataset(std::move(items), camvid_classes(), lut_mapper(camvid_lut()), source);
}

}  // namespace lesseg
