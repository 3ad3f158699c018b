// SYNTHIA-RAND-CITYSCAPES: RGB/*.png + GT/LABELS/*.png (16-bit, 3 channels, class in the last one).
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> synthia_to_train() {
  // clang-format off
  return formats::lut_from_pairs({{3, 0}, {4, 1}, {2, 2}, {21, 3}, {5, 4}, {7, 5}, {15, 6}, {9, 7},
                                  {6, 8}, {1, 10}, {10, 11}, {17, 12}, {8, 13}, {19, 15}, {12, 17}, {11, 18}});
  // clang-format on
}

// The reference converters read with cv2 (BGR) and take channel -1: that is the PNG's first stored
// channel, which read_label_raw (RGB order) returns as channel 0. The other channel holds instance ids.
LabelMapper synthia_mapper() {
  return [ids = lut_mapper(synthia_to_train())](const cv::Mat& raw, const fs::path& file) {
    if (raw.channels() < 3)
      throw_bad_input(file,
                      "SYNTHIA label has " + std::to_string(raw.channels()) + " channel(s); expected 3");
    cv::Mat class_channel;
    cv::extractChannel(raw, class_channel, 0);
    return ids(class_channel, file);
  };
}

}  // namespace

std::vector<int> synthia_eval_classes(int count) {
  if (count == 16) return {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18};
  if (count == 13) return {0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18};
  throw_usage("SYNTHIA is evaluated over 16 or 13 classes, not " + std::to_string(count));
}

// split "" / "all": every image; otherwise root/{split}.txt lists image names.
SegDatasetPtr open_synthia(const fs::path& root, const std::string& split) {
  formats::require_dir(root, "SYNTHIA dataset");
  auto items = formats::paired_items(root, split, root / "RGB", root / "GT" / "LABELS", ".png");
  return formats::make_dataset(std::move(items), cityscapes_classes(), synthia_mapper(), root / "RGB");
}

}  // namespace lesseg
