#include "lesseg/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <opencv2/core.hpp>
#include <random>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/io/image_io.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {

std::string size_text(const cv::Mat& m) { return std::to_string(m.cols) + "x" + std::to_string(m.rows); }

std::string depth_text(int depth) {
  switch (depth) {
    case CV_8U:
      return "8-bit";
    case CV_16U:
      return "16-bit";
    default:
      return "OpenCV depth " + std::to_string(depth);
  }
}

void require_single_channel(const cv::Mat& raw, const fs::path& file) {
  if (raw.channels() != 1)
    throw_bad_input(file, "label image has " + std::to_string(raw.channels()) +
                              " channels; expected single-channel class indices (palette or grey PNG)");
  if (raw.depth() != CV_8U && raw.depth() != CV_16U)
    throw_bad_input(file, "label image is " + depth_text(raw.depth()) + "; expected 8- or 16-bit indices");
}

// Reports the first pixel whose value is neither a class nor the ignore index.
void check_mask_values(const cv::Mat& mask, const ClassInfo& classes, const fs::path& mask_file) {
  for (int y = 0; y < mask.rows; ++y) {
    const uint8_t* row = mask.ptr<uint8_t>(y);
    for (int x = 0; x < mask.cols; ++x) {
      const int v = row[x];
      if (v < classes.num_classes() || v == classes.ignore_index) continue;
      throw_bad_input(mask_file, "label value " + std::to_string(v) + " at pixel (x=" + std::to_string(x) +
                                     ", y=" + std::to_string(y) + ") is not a class index (" +
                                     std::to_string(classes.num_classes()) + " classes, ignore_index " +
                                     std::to_string(classes.ignore_index) + ")");
    }
  }
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

}  // namespace

// std::shuffle and the std distributions are implementation-defined, which would make "the same
// seed" mean different subsets per toolchain.
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

FileSegDataset::FileSegDataset(std::vector<SegItem> items, ClassInfo classes, LabelMapper mapper)
    : items_(std::move(items)), classes_(std::move(classes)), mapper_(std::move(mapper)) {}

SegSample FileSegDataset::get(size_t index) const {
  const SegItem& it = items_.at(index);
  SegSample sample;
  sample.id = it.image.stem().string();
  sample.image = read_image_rgb(it.image);
  if (it.mask.empty()) return sample;
  // read_label_raw names a missing or unreadable mask file in its error.
  sample.mask = mapper_(read_label_raw(it.mask), it.mask);
  validate_mask(sample.mask, sample.image, classes_, it.mask);
  return sample;
}

void validate_mask(const cv::Mat& mask, const cv::Mat& image, const ClassInfo& classes,
                   const fs::path& mask_file) {
  if (mask.size() != image.size())
    throw_bad_input(mask_file, "mask is " + size_text(mask) + " but its image is " + size_text(image));
  if (mask.type() != CV_8UC1)
    throw_bad_input(mask_file, "mask after label mapping has " + std::to_string(mask.channels()) +
                                   " channel(s) of " + depth_text(mask.depth()) +
                                   "; expected one 8-bit channel of class indices");
  check_mask_values(mask, classes, mask_file);
}

SubsetDataset::SubsetDataset(SegDatasetPtr base, std::vector<size_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  for (size_t i : indices_)
    if (i >= base_->size())
      throw Error(ExitCode::internal, "SubsetDataset: index " + std::to_string(i) + " >= dataset size " +
                                          std::to_string(base_->size()));
}

SegDatasetPtr labeled_fraction(SegDatasetPtr base, double fraction, uint64_t seed) {
  return split_labeled(std::move(base), fraction, seed).labeled;
}

namespace {
// `labeled` (base indices) and the rest, each sorted into base order so ids stay easy to follow.
LabeledSplit split_by_indices(SegDatasetPtr base, std::vector<size_t> labeled) {
  std::vector<bool> taken(base->size(), false);
  for (size_t index : labeled) taken.at(index) = true;
  std::vector<size_t> rest;
  for (size_t i = 0; i < base->size(); ++i)
    if (!taken[i]) rest.push_back(i);
  std::sort(labeled.begin(), labeled.end());
  LabeledSplit split;
  if (!rest.empty())
    split.unlabeled = std::make_shared<UnlabeledDataset>(std::make_shared<SubsetDataset>(base, std::move(rest)));
  split.labeled = std::make_shared<SubsetDataset>(std::move(base), std::move(labeled));
  return split;
}
}  // namespace

LabeledSplit split_labeled(SegDatasetPtr base, double fraction, uint64_t seed) {
  if (!(fraction > 0.0 && fraction <= 1.0))
    throw_usage("labeled fraction must be in (0, 1], got " + std::to_string(fraction));
  if (base->size() == 0) throw_usage("cannot take a labeled fraction of an empty dataset");
  const auto wanted = static_cast<size_t>(std::llround(double(base->size()) * fraction));
  return split_labeled_count(base, std::max<size_t>(1, wanted), seed);
}

LabeledSplit split_labeled_count(SegDatasetPtr base, size_t count, uint64_t seed) {
  const size_t n = base->size();
  if (count < 1 || count > n)
    throw_usage("cannot label " + std::to_string(count) + " of " + std::to_string(n) + " images (1.." +
                std::to_string(n) + ")");
  std::vector<size_t> order = seeded_permutation(n, seed);
  order.resize(count);
  return split_by_indices(std::move(base), std::move(order));
}

LabeledSplit split_labeled_ids(SegDatasetPtr base, const std::vector<std::string>& ids) {
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < base->size(); ++i) index_of.emplace(base->sample_id(i), i);
  std::vector<size_t> labeled;
  std::unordered_set<size_t> seen;
  for (const std::string& id : ids) {
    auto found = index_of.find(id);
    if (found == index_of.end()) throw_usage("labeled image '" + id + "' is not in the training split");
    if (seen.insert(found->second).second) labeled.push_back(found->second);
  }
  if (labeled.empty()) throw_usage("the labeled list names no image");
  return split_by_indices(std::move(base), std::move(labeled));
}

SegSample UnlabeledDataset::get(size_t index) const {
  SegSample sample = base_->get(index);
  sample.mask = cv::Mat::zeros(sample.image.rows, sample.image.cols, CV_8U);
  sample.instances.clear();
  return sample;
}

LabelMapper identity_mapper() {
  return [](const cv::Mat& raw, const fs::path& file) {
    require_single_channel(raw, file);
    if (raw.depth() == CV_8U) return raw;
    // 16-bit grey labels are fine while every value fits in a byte.
    double max_value = 0;
    cv::Point where;
    cv::minMaxLoc(raw, nullptr, &max_value, nullptr, &where);
    if (max_value > 255)
      throw_bad_input(file, "label value " + std::to_string(int(max_value)) +
                                " at pixel (x=" + std::to_string(where.x) + ", y=" + std::to_string(where.y) +
                                ") does not fit 0..255");
    cv::Mat out;
    raw.convertTo(out, CV_8U);
    return out;
  };
}

LabelMapper lut_mapper(std::vector<uint8_t> lut) {
  if (lut.size() > 256) throw Error(ExitCode::internal, "lut_mapper: table longer than 256 entries");
  lut.resize(256, 255);
  return [table = std::move(lut)](const cv::Mat& raw, const fs::path& file) {
    require_single_channel(raw, file);
    cv::Mat out(raw.size(), CV_8U);
    if (raw.depth() == CV_8U) {
      cv::LUT(raw, cv::Mat(1, 256, CV_8U, const_cast<uint8_t*>(table.data())), out);
      return out;
    }
    for (int y = 0; y < raw.rows; ++y) {  // 16-bit: values past the table are "absent" -> 255
      const uint16_t* in = raw.ptr<uint16_t>(y);
      uint8_t* o = out.ptr<uint8_t>(y);
      for (int x = 0; x < raw.cols; ++x) o[x] = in[x] < 256 ? table[in[x]] : 255;
    }
    return out;
  };
}

std::vector<SegItem> read_split_list(const fs::path& list_file, const fs::path& root) {
  require_readable_file(list_file);
  std::istringstream in(read_file(list_file));
  std::vector<SegItem> items;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string image, mask, extra;
    fields >> image >> mask >> extra;
    if (!extra.empty())
      throw_bad_input(list_file,
                      "line " + std::to_string(number) + ": expected 'image [mask]', got '" + line + "'");
    items.push_back({root / image, mask.empty() ? fs::path() : root / mask});
  }
  return items;
}

}  // namespace lesseg
