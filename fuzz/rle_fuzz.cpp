// Compressed COCO RLE strings (rle::from_string), then decode / encode / merge / iou on what parses.
// Input: byte 0 -> height, byte 1 -> width (both 0..64, so masks stay small), the rest the counts string.
// rle.h's contract for bad input is std::invalid_argument; anything else escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <opencv2/core.hpp>

#include "fuzz_check.h"
#include "lesseg/io/rle.h"

namespace rle = lesseg::rle;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int64_t height = data[0] % 65, width = data[1] % 65;
  const std::string counts(reinterpret_cast<const char*>(data + 2), size - 2);
  rle::Rle r;
  try {
    r = rle::from_string(counts, height, width);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  // Accepted: the counts describe exactly height*width pixels, so everything below must succeed.
  const cv::Mat mask = rle::decode(r);
  const uint64_t area = rle::area(r);
  if (height * width == 0) {
    FUZZ_CHECK(mask.empty() && area == 0);
    return 0;
  }
  FUZZ_CHECK(mask.rows == height && mask.cols == width && mask.type() == CV_8U);
  FUZZ_CHECK(area == uint64_t(cv::countNonZero(mask)));
  const rle::Rle canonical = rle::encode(mask);
  FUZZ_CHECK(rle::area(canonical) == area);
  const rle::Rle again = rle::from_string(rle::to_string(canonical), height, width);
  FUZZ_CHECK(again.counts == canonical.counts);
  const rle::Rle both = rle::merge({r, canonical}, /*intersect=*/true);
  FUZZ_CHECK(rle::area(both) == area);
  FUZZ_CHECK(rle::iou(r, canonical) == (area ? 1.0 : 0.0));
  rle::bbox(r);  // non-canonical counts (zero-length runs) may give cocoapi's odd boxes, but never crash
  const auto box = rle::bbox(canonical);
  FUZZ_CHECK(box[2] >= 0 && box[3] >= 0 && box[0] + box[2] <= double(width) && box[1] + box[3] <= double(height));
  return 0;
}
