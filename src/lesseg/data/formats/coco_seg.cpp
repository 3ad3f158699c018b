// COCO instances JSON as a semantic-segmentation dataset (formats.md "Instance masks: COCO JSON").
#include <filesystem>
#include <string>
#include <utility>

#include "lesseg/core/error.h"
#include "lesseg/data/formats/formats.h"
#include "lesseg/io/coco.h"
#include "lesseg/io/image_io.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {

class CocoSegDataset : public SegDataset {
 public:
  CocoSegDataset(fs::path root, fs::path json_file, coco::Dataset data, ClassInfo classes)
      : root_(std::move(root)), json_file_(std::move(json_file)), data_(std::move(data)), classes_(std::move(classes)) {}

  size_t size() const override { return data_.images.size(); }
  const ClassInfo& classes() const override { return classes_; }

  SegSample get(size_t index) const override {
    const coco::Image& im = data_.images.at(index);
    fs::path file = image_path(im);
    SegSample s;
    s.image = read_image_rgb(file);
    if (s.image.rows != im.height || s.image.cols != im.width)
      throw_bad_input(file, "image is " + std::to_string(s.image.cols) + "x" + std::to_string(s.image.rows) +
                                " but " + json_file_.string() + " says " + std::to_string(im.width) + "x" +
                                std::to_string(im.height));
    try {
      s.mask = coco::semantic_mask(data_, im, classes_.ignore_index);
    } catch (const Error& e) {
      throw_bad_input(json_file_, e.what());
    }
    s.id = fs::path(im.file_name).stem().string();
    return s;
  }

 private:
  // images/<file_name> first, then <file_name> relative to the root.
  fs::path image_path(const coco::Image& im) const {
    fs::path in_images = root_ / "images" / im.file_name;
    std::error_code ec;
    if (fs::exists(in_images, ec)) return in_images;
    fs::path direct = root_ / im.file_name;
    if (fs::exists(direct, ec)) return direct;
    throw_bad_input(in_images, "image " + std::to_string(im.id) + " of " + json_file_.string() +
                                   " not found (also tried " + direct.string() + ")");
  }

  fs::path root_;
  fs::path json_file_;
  coco::Dataset data_;
  ClassInfo classes_;
};

ClassInfo coco_classes(const coco::Dataset& data, const fs::path& json_file) {
  ClassInfo classes;
  if (data.categories.size() > 254)
    throw_bad_input(json_file, std::to_string(data.categories.size()) + " categories do not fit 8-bit masks (max 254)");
  classes.names.push_back("background");
  for (const coco::Category& c : data.categories) classes.names.push_back(c.name);
  for (int i = 0; i < classes.num_classes(); ++i) classes.colors.push_back(default_class_color(i));
  return classes;
}

}  // namespace

SegDatasetPtr open_coco(const fs::path& root, const std::string& json_file) {
  fs::path file = root / json_file;
  coco::Dataset data = coco::read(file);
  ClassInfo classes = coco_classes(data, file);
  return std::make_shared<CocoSegDataset>(root, file, std::move(data), std::move(classes));
}

}  // namespace lesseg
