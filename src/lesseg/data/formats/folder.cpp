// The generic folder format (images/ + masks/ + optional splits/ + classes.yaml) and the list
// helpers the other flat layouts share.
#include <map>
#include <sstream>

#include "lesseg/core/fs.h"
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace formats {

std::vector<std::string> read_name_list(const fs::path& list_file) {
  require_readable_file(list_file);
  std::istringstream in(read_file(list_file));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    const auto begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos || line[begin] == '#') continue;
    names.push_back(line.substr(begin, line.find_last_not_of(" \t\r") - begin + 1));
  }
  return names;
}

std::vector<SegItem> paired_items(const fs::path& root, const std::string& split, const fs::path& image_dir,
                                  const fs::path& label_dir, const std::string& label_ext) {
  require_dir(image_dir, "image");
  std::vector<fs::path> images;
  if (split.empty() || split == "all") {
    images = list_files(image_dir, false, is_image_file);
  } else {
    for (const auto& name : read_name_list(root / (split + ".txt"))) {
      fs::path file = fs::path(name).filename();
      if (!file.has_extension()) file += ".png";
      images.push_back(image_dir / file);
    }
  }
  std::vector<SegItem> items;
  for (const auto& image : images) items.push_back({image, label_dir / (image.stem().string() + label_ext)});
  return items;
}

}  // namespace formats

namespace {
using namespace formats;

// "sub/name" for images/sub/name.jpg: the key that pairs an image with its mask.
std::string stem_key(const fs::path& file, const fs::path& dir) {
  const fs::path rel = file.lexically_relative(dir);
  return (rel.parent_path() / rel.stem()).generic_string();
}

std::map<std::string, fs::path> index_by_stem(const fs::path& dir) {
  std::map<std::string, fs::path> index;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return index;
  for (const auto& file : list_files(dir, true, is_image_file)) {
    auto [it, inserted] = index.emplace(stem_key(file, dir), file);
    if (!inserted) throw_bad_input(file, "has the same stem as " + it->second.string() + "; keep one");
  }
  return index;
}

ClassInfo folder_classes(const fs::path& root) {
  const fs::path yaml = root / "classes.yaml";
  std::error_code ec;
  if (!fs::exists(yaml, ec))
    throw_bad_input(yaml,
                    "file does not exist; the folder format needs classes.yaml "
                    "({names: [...], colors: [[r,g,b], ...], ignore_index: 255})");
  return load_classes_yaml(yaml);
}

// One split-list line: "image mask" (relative to root, UniMatch style), a path relative to root,
// or an image stem inside images/.
SegItem resolve_entry(const std::string& line, const fs::path& root,
                      const std::map<std::string, fs::path>& images,
                      const std::map<std::string, fs::path>& masks, const fs::path& list_file) {
  std::istringstream fields(line);
  std::string first, second;
  fields >> first >> second;
  if (!second.empty()) return {root / first, root / second};
  fs::path image = root / first;
  std::error_code ec;
  if (!fs::is_regular_file(image, ec)) {
    fs::path key = fs::path(first);
    if (is_image_file(key)) key.replace_extension();
    auto found = images.find(key.generic_string());
    if (found == images.end())
      throw_bad_input(list_file, "'" + first + "' names no file in " + (root / "images").string());
    image = found->second;
  }
  auto mask = masks.find(stem_key(image, root / "images"));
  return {image, mask == masks.end() ? fs::path() : mask->second};
}

}  // namespace

SegDatasetPtr open_folder(const fs::path& root, const std::string& split) {
  require_dir(root, "dataset");
  require_dir(root / "images", "images");
  ClassInfo classes = folder_classes(root);
  const auto images = index_by_stem(root / "images");
  const auto masks = index_by_stem(root / "masks");
  std::vector<SegItem> items;
  fs::path source = root / "images";
  if (split.empty() || split == "all") {
    for (const auto& [key, image] : images) {
      auto mask = masks.find(key);
      items.push_back({image, mask == masks.end() ? fs::path() : mask->second});
    }
  } else {
    source = root / "splits" / (split + ".txt");
    for (const auto& line : read_name_list(source))
      items.push_back(resolve_entry(line, root, images, masks, source));
    // Unlabeled images of a semi-supervised split must not see their masks even when they exist.
    if (split == "unlabeled")
      for (auto& item : items) item.mask.clear();
  }
  return make_dataset(std::move(items), std::move(classes), identity_mapper(), source);
}

}  // namespace lesseg
