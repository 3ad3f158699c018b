#pragma once
// COCO run-length encoding, with pycocotools' (cocoapi maskApi.c) definitions: column-major order,
// runs alternate starting with zeros, compressed string form with 5-bit groups.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace lesseg::rle {

struct Rle {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint32_t> counts;  // alternating zero / one runs, first run is zeros (may be 0)
};

Rle encode(const cv::Mat& mask);            // CV_8U, non-zero = inside
cv::Mat decode(const Rle& rle);             // CV_8U 0/1, throws std::invalid_argument if counts do not sum to h*w
std::string to_string(const Rle& rle);      // compressed "counts" string (rleToString)
// Parses a compressed string (rleFrString); throws std::invalid_argument on malformed input.
Rle from_string(const std::string& counts, int64_t height, int64_t width);
// Rasterizes polygons [x1,y1,x2,y2,...] exactly as rleFrPoly (x5 upsampled boundary walk); merged.
Rle from_polygons(const std::vector<std::vector<double>>& polygons, int64_t height, int64_t width);
uint64_t area(const Rle& rle);
// Throws std::invalid_argument unless the size is valid and the counts sum to height*width.
void validate(const Rle& rle);
std::array<double, 4> bbox(const Rle& rle);  // [x, y, w, h] as rleToBbox
// Union (intersect=false) or intersection of masks of equal size (rleMerge).
Rle merge(const std::vector<Rle>& rles, bool intersect = false);
// rleIou: IoU, or for a crowd ground truth intersection / area(detection).
double iou(const Rle& detection, const Rle& ground_truth, bool ground_truth_is_crowd = false);

}  // namespace lesseg::rle
