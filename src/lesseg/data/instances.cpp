#include "lesseg/data/instances.h"

#include "lesseg/core/error.h"
#include "lesseg/io/image_io.h"

namespace lesseg {

InstanceDataset::InstanceDataset(const std::filesystem::path& json_file, const std::filesystem::path& image_root,
                                 bool drop_empty_images)
    : json_(json_file), root_(image_root), coco_(coco::read(json_file)) {
  classes_.names = {"background", "object"};
  classes_.colors = {default_class_color(0), default_class_color(1)};
  int64_t usable_total = 0;
  for (size_t i = 0; i < coco_.images.size(); ++i) {
    int64_t usable_here = 0;
    auto found = coco_.annotations_by_image.find(coco_.images[i].id);
    if (found != coco_.annotations_by_image.end()) {
      for (size_t a : found->second) {
        if (usable(coco_.annotations[a])) {
          ++usable_here;
        } else {
          ++skipped_annotations_;
        }
      }
    }
    usable_total += usable_here;
    if (usable_here == 0 && drop_empty_images) {
      ++dropped_images_;
      continue;
    }
    images_.push_back(i);
  }
  if (usable_total == 0)
    throw_bad_input(json_file, "no usable annotation (" + std::to_string(coco_.annotations.size()) +
                                   " annotations, all empty or crowd): nothing to train or score on");
}

bool InstanceDataset::usable(const coco::Annotation& annotation) const {
  return !annotation.iscrowd && rle::area(annotation.mask) > 0;
}

std::vector<const coco::Annotation*> InstanceDataset::annotations(size_t index) const {
  std::vector<const coco::Annotation*> out;
  auto found = coco_.annotations_by_image.find(image(index).id);
  if (found == coco_.annotations_by_image.end()) return out;
  for (size_t a : found->second)
    if (usable(coco_.annotations[a])) out.push_back(&coco_.annotations[a]);
  return out;
}

SegSample InstanceDataset::get(size_t index) const {
  const coco::Image& info = image(index);
  const auto path = image_path(index);
  SegSample sample;
  sample.image = read_image_rgb(path);
  if (sample.image.rows != info.height || sample.image.cols != info.width)
    throw_bad_input(path, "the image is " + std::to_string(sample.image.cols) + "x" + std::to_string(sample.image.rows) +
                              " but " + json_.string() + " gives image id " + std::to_string(info.id) + " as " +
                              std::to_string(info.width) + "x" + std::to_string(info.height));
  for (const coco::Annotation* annotation : annotations(index)) sample.instances.push_back(rle::decode(annotation->mask));
  sample.id = std::filesystem::path(info.file_name).stem().string();
  return sample;
}

}  // namespace lesseg
