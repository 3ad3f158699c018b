// Cityscapes: leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/{split}/{city}/*_gtFine_labelIds.png.
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {
using namespace formats;

const std::string kImageSuffix = "_leftImg8bit.png";

// Ready train-id files are used as they are; labelIds go through the 19-class table.
LabelMapper cityscapes_mapper() {
  return [ids = lut_mapper(cityscapes_label_to_train()), ready = identity_mapper()](const cv::Mat& raw,
                                                                                    const fs::path& file) {
    return ends_with(file.filename().string(), "_labelTrainIds.png") ? ready(raw, file) : ids(raw, file);
  };
}

// gtFine/{split}/{city}/{prefix}_gtFine_labelIds.png, or _labelTrainIds.png when only that exists.
fs::path label_for(const fs::path& root, const std::string& split, const fs::path& image) {
  const std::string name = image.filename().string();
  const std::string prefix = name.substr(0, name.size() - kImageSuffix.size());
  const fs::path dir = root / "gtFine" / split / image.parent_path().filename();
  const fs::path ids = dir / (prefix + "_gtFine_labelIds.png");
  const fs::path train_ids = dir / (prefix + "_gtFine_labelTrainIds.png");
  std::error_code ec;
  return !fs::exists(ids, ec) && fs::exists(train_ids, ec) ? train_ids : ids;
}

}  // namespace

std::vector<uint8_t> cityscapes_label_to_train() {
  // clang-format off
  return lut_from_pairs({{7, 0}, {8, 1}, {11, 2}, {12, 3}, {13, 4}, {17, 5}, {19, 6}, {20, 7},
                         {21, 8}, {22, 9}, {23, 10}, {24, 11}, {25, 12}, {26, 13}, {27, 14}, {28, 15},
                         {31, 16}, {32, 17}, {33, 18}});
  // clang-format on
}

ClassInfo cityscapes_classes() {
  ClassInfo info;
  // ref: cityscapesScripts helpers/labels.py (names and colours of the 19 evaluated classes)
  info.names = {"road",         "sidewalk",   "building", "wall",       "fence",  "pole",  "traffic light",
                "traffic sign", "vegetation", "terrain",  "sky",        "person", "rider", "car",
                "truck",        "bus",        "train",    "motorcycle", "bicycle"};
  info.colors = {{128, 64, 128},  {244, 35, 232}, {70, 70, 70},  {102, 102, 156}, {190, 153, 153},
                 {153, 153, 153}, {250, 170, 30}, {220, 220, 0}, {107, 142, 35},  {152, 251, 152},
                 {70, 130, 180},  {220, 20, 60},  {255, 0, 0},   {0, 0, 142},     {0, 0, 70},
                 {0, 60, 100},    {0, 80, 100},   {0, 0, 230},   {119, 11, 32}};
  info.ignore_index = 255;
  return info;
}

std::pair<cv::Mat, cv::Mat> cityscapes_instances(const cv::Mat& instance_ids) {
  if (instance_ids.channels() != 1)
    throw_usage("cityscapes_instances: expected a single-channel instanceIds map");
  cv::Mat ids;
  instance_ids.convertTo(ids, CV_32S);
  const std::vector<uint8_t> lut = cityscapes_label_to_train();
  cv::Mat train(ids.size(), CV_8U), instance(ids.size(), CV_32S);
  for (int y = 0; y < ids.rows; ++y) {
    const int32_t* in = ids.ptr<int32_t>(y);
    uint8_t* t = train.ptr<uint8_t>(y);
    int32_t* k = instance.ptr<int32_t>(y);
    for (int x = 0; x < ids.cols; ++x) {
      const int32_t label_id = in[x] >= 1000 ? in[x] / 1000 : in[x];  // below 1000: a plain labelId
      t[x] = label_id >= 0 && label_id < 256 ? lut[size_t(label_id)] : 255;
      k[x] = in[x] >= 1000 ? in[x] % 1000 : -1;
    }
  }
  return {train, instance};
}

SegDatasetPtr open_cityscapes(const fs::path& root, const std::string& split) {
  const fs::path image_dir = root / "leftImg8bit" / split;
  require_dir(image_dir, "Cityscapes image");
  auto is_image = [](const fs::path& p) { return ends_with(p.filename().string(), kImageSuffix); };
  std::vector<SegItem> items;
  for (const auto& image : list_files(image_dir, true, is_image))
    items.push_back({image, label_for(root, split, image)});
  return make_dataset(std::move(items), cityscapes_classes(), cityscapes_mapper(), image_dir);
}

}  // namespace lesseg
