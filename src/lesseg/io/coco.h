#pragma once
// COCO instances JSON (also CutLER pseudo-masks and SAM mask lists are read with these pieces).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lesseg/io/rle.h"

namespace lesseg::coco {

struct Image {
  int64_t id = 0;
  std::string file_name;
  int64_t height = 0;
  int64_t width = 0;
};

struct Annotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  rle::Rle mask;  // decoded from polygons, uncompressed or compressed RLE
  bool iscrowd = false;
  double area = 0;  // as stored in the file
  double score = -1;  // "score" of a prediction or pseudo-mask; -1 = none (ground truth)
};

struct Category {
  int64_t id = 0;
  std::string name;
};

struct Dataset {
  std::vector<Image> images;
  std::vector<Annotation> annotations;
  std::vector<Category> categories;
  std::map<int64_t, std::vector<size_t>> annotations_by_image;  // image id -> annotation indices
};

// Parses and validates (malformed JSON, bad RLE, counts not summing to h*w, odd polygon lengths,
// unknown image ids): throws Error(bad_input) naming the file and the offending annotation.
Dataset read(const std::filesystem::path& json_file);
// The same from the file's text; `origin` names the file in errors.
Dataset parse(const std::string& json_text, const std::filesystem::path& origin);
void write(const std::filesystem::path& json_file, const Dataset& dataset);  // compressed RLE, atomic

// Semantic mask of one image: category index (position in `categories` + 1; 0 = background),
// crowd regions -> ignore_index, later annotations drawn over earlier ones.
cv::Mat semantic_mask(const Dataset& dataset, const Image& image, int ignore_index = 255);
// Instance id map (0 background, k = k-th annotation of the image + 1), CV_16U.
cv::Mat instance_mask(const Dataset& dataset, const Image& image);

}  // namespace lesseg::coco
