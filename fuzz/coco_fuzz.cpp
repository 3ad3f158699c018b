// COCO instances JSON (coco::parse: images, categories, polygons, compressed and uncompressed RLE), then
// the semantic and instance masks of small images. Bad input must end in lesseg::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

#include "fuzz_check.h"
#include "lesseg/core/error.h"
#include "lesseg/io/coco.h"

namespace coco = lesseg::coco;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  coco::Dataset d;
  try {
    d = coco::parse(text, "fuzz.json");
  } catch (const lesseg::Error& e) {
    FUZZ_CHECK(e.code() == lesseg::ExitCode::bad_input);
    return 0;
  }
  for (const auto& a : d.annotations) lesseg::rle::validate(a.mask);  // parse validated every mask
  int64_t budget = int64_t(1) << 20;  // pixels rasterized per input: keeps each run fast
  for (const auto& image : d.images) {
    budget -= image.height * image.width;
    if (budget < 0) break;
    try {
      const cv::Mat semantic = coco::semantic_mask(d, image);
      FUZZ_CHECK(semantic.rows == image.height && semantic.cols == image.width);
    } catch (const lesseg::Error&) {  // e.g. more than 255 categories
    }
    const cv::Mat instances = coco::instance_mask(d, image);
    FUZZ_CHECK(instances.rows == image.height && instances.cols == image.width);
  }
  return 0;
}
