#pragma once
// Instance datasets from a COCO instances JSON (ground truth, or pseudo-masks from `lesseg pseudo`):
// images under a root folder, one class-agnostic object mask per annotation (SegSample::instances).
#include <cstdint>
#include <filesystem>

#include "lesseg/data/dataset.h"
#include "lesseg/io/coco.h"

namespace lesseg {

class InstanceDataset : public SegDataset {
 public:
  // Reads and validates the JSON (Error bad_input naming it). With drop_empty_images, images with no
  // usable annotation are left out (detectron2's FILTER_EMPTY_ANNOTATIONS, for training); a JSON
  // with no usable annotation at all is an error either way. Zero-area and crowd annotations are
  // skipped and counted.
  InstanceDataset(const std::filesystem::path& json_file, const std::filesystem::path& image_root,
                  bool drop_empty_images);
  size_t size() const override { return images_.size(); }
  // The image (its size must be the JSON's width x height: bad_input naming both files otherwise)
  // and its object masks.
  SegSample get(size_t index) const override;
  const ClassInfo& classes() const override { return classes_; }
  std::string sample_id(size_t index) const override {
    return std::filesystem::path(image(index).file_name).stem().string();
  }

  const coco::Dataset& coco() const { return coco_; }
  const coco::Image& image(size_t index) const { return coco_.images.at(images_.at(index)); }
  std::filesystem::path image_path(size_t index) const { return root_ / image(index).file_name; }
  // The annotations get() returns for an image, in file order.
  std::vector<const coco::Annotation*> annotations(size_t index) const;
  int64_t skipped_annotations() const { return skipped_annotations_; }
  int64_t dropped_images() const { return dropped_images_; }

 private:
  bool usable(const coco::Annotation& annotation) const;

  std::filesystem::path json_, root_;
  coco::Dataset coco_;
  std::vector<size_t> images_;  // indices into coco_.images
  ClassInfo classes_;
  int64_t skipped_annotations_ = 0, dropped_images_ = 0;
};

}  // namespace lesseg
