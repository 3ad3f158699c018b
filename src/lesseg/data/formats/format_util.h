#pragma once
// Helpers shared by the dataset-format openers (internal to src/lesseg/data/formats).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lesseg/core/error.h"
#include "lesseg/data/dataset.h"

namespace lesseg::formats {

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

inline bool is_image_file(const std::filesystem::path& p) {
  static const char* const kExts[] = {".png",  ".jpg",  ".jpeg", ".bmp", ".tif",
                                      ".tiff", ".webp", ".ppm",  ".pgm"};
  const std::string ext = lower(p.extension().string());
  return std::any_of(std::begin(kExts), std::end(kExts), [&](const char* e) { return ext == e; });
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline void require_dir(const std::filesystem::path& dir, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw_bad_input(dir, what + " folder does not exist");
}

// Files (not folders) under `dir` accepted by `keep`, sorted so that datasets are deterministic.
template <typename Keep>
std::vector<std::filesystem::path> list_files(const std::filesystem::path& dir, bool recursive, Keep keep) {
  std::vector<std::filesystem::path> out;
  auto take = [&](const std::filesystem::directory_entry& e) {
    std::error_code ec;
    if (e.is_regular_file(ec) && keep(e.path())) out.push_back(e.path());
  };
  try {
    if (recursive) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) take(e);
    } else {
      for (const auto& e : std::filesystem::directory_iterator(dir)) take(e);
    }
  } catch (const std::filesystem::filesystem_error& e) {
    throw_bad_input(dir, std::string("cannot list folder: ") + e.code().message());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The dataset, or an error naming `where` when no sample was found.
inline SegDatasetPtr make_dataset(std::vector<SegItem> items, ClassInfo classes, LabelMapper mapper,
                                  const std::filesystem::path& where) {
  if (items.empty()) throw_bad_input(where, "no images found");
  return std::make_shared<FileSegDataset>(std::move(items), std::move(classes), std::move(mapper));
}

// A 256-entry table: listed (from, to) pairs, every other value -> 255.
inline std::vector<uint8_t> lut_from_pairs(const std::vector<std::pair<int, int>>& pairs) {
  std::vector<uint8_t> lut(256, 255);
  for (const auto& [from, to] : pairs) lut[size_t(from)] = uint8_t(to);
  return lut;
}

// Names listed one per line (stems or relative paths); used by GTA5 / SYNTHIA / folder splits.
std::vector<std::string> read_name_list(const std::filesystem::path& list_file);

// Items for a flat "images + labels with the same stem" layout: every image in `image_dir`
// (or only the names in root/{split}.txt when split is not "" / "all"), mask = label_dir/stem+label_ext.
std::vector<SegItem> paired_items(const std::filesystem::path& root, const std::string& split,
                                  const std::filesystem::path& image_dir,
                                  const std::filesystem::path& label_dir, const std::string& label_ext);

}  // namespace lesseg::formats
