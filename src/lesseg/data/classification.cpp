#include "lesseg/data/classification.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <random>
#include <sstream>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/formats/format_util.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

[[noreturn]] void throw_line(const fs::path& file, int line, const std::string& reason) {
  throw_bad_input(file, "line " + std::to_string(line) + ": " + reason);
}

// Labels index score columns, so a stray huge number must not size an allocation.
constexpr int64_t kMaxLabel = 65535;

int64_t parse_label(const std::string& text, const fs::path& file, int line) {
  int64_t value = -1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 0 || value > kMaxLabel)
    throw_line(file, line, "label '" + text + "' is not an integer in [0, " + std::to_string(kMaxLabel) + "]");
  return value;
}

// One "path label" line; the label is the last field so that paths may contain spaces.
LabeledImage parse_line(const std::string& line, const fs::path& file, int number) {
  const auto gap = line.find_last_of(" \t");
  if (gap == std::string::npos)
    throw_line(file, number, "expected 'relative/path label', got '" + line + "'");
  const std::string path = trim(line.substr(0, gap));
  LabeledImage item{file.parent_path() / path, parse_label(line.substr(gap + 1), file, number)};
  std::error_code ec;
  if (!fs::is_regular_file(item.image, ec))
    throw_line(file, number, "image " + item.image.string() + " does not exist");
  return item;
}

ClassificationSet read_label_list(const fs::path& file) {
  require_readable_file(file);
  std::istringstream in(read_file(file));
  ClassificationSet set;
  int number = 0;
  int64_t max_label = -1;
  for (std::string line; std::getline(in, line);) {
    ++number;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    set.items.push_back(parse_line(line, file, number));
    max_label = std::max(max_label, set.items.back().label);
  }
  if (set.items.empty()) throw_bad_input(file, "lists no images");
  for (int64_t c = 0; c <= max_label; ++c) set.class_names.push_back(std::to_string(c));
  return set;
}

// ref: torchvision datasets.ImageFolder (find_classes: sorted subfolder names; no empty class)
ClassificationSet read_image_folder(const fs::path& root) {
  std::vector<fs::path> class_dirs;
  try {
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory()) class_dirs.push_back(entry.path());
  } catch (const fs::filesystem_error& e) {
    throw_bad_input(root, std::string("cannot list folder: ") + e.code().message());
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty()) throw_bad_input(root, "has neither labels.txt nor class subfolders");
  ClassificationSet set;
  for (const auto& dir : class_dirs) {
    const int64_t label = set.num_classes();
    set.class_names.push_back(dir.filename().string());
    auto images = formats::list_files(dir, true, formats::is_image_file);
    if (images.empty()) throw_bad_input(dir, "class folder holds no images");
    for (auto& image : images) set.items.push_back({std::move(image), label});
  }
  return set;
}

}  // namespace

ClassificationSet read_classification_set(const fs::path& root) {
  formats::require_dir(root, "classification set");
  std::error_code ec;
  if (fs::exists(root / "labels.txt", ec)) return read_label_list(root / "labels.txt");
  return read_image_folder(root);
}

ClassificationSplit split_classification_set(const ClassificationSet& set, double train_fraction, uint64_t seed) {
  if (!(train_fraction > 0.0 && train_fraction < 1.0))
    throw_usage("probe.train_fraction must be in (0, 1), got " + std::to_string(train_fraction));
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < set.items.size(); ++i) by_class[set.items[i].label].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<bool> in_train(set.items.size(), false);
  for (auto& [label, indices] : by_class) {
    const int64_t n = static_cast<int64_t>(indices.size());
    int64_t take = std::max<int64_t>(1, std::llround(double(n) * train_fraction));
    if (n >= 2) take = std::min(take, n - 1);  // every class with two images is tested too
    std::shuffle(indices.begin(), indices.end(), rng);
    for (int64_t k = 0; k < take; ++k) in_train[indices[size_t(k)]] = true;
  }
  ClassificationSplit split;
  split.train.class_names = split.test.class_names = set.class_names;
  for (size_t i = 0; i < set.items.size(); ++i) (in_train[i] ? split.train : split.test).items.push_back(set.items[i]);
  return split;
}

}  // namespace lesseg
