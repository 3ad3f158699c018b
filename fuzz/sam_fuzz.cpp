// SAM mask files (sam::parse_masks: automatic-mask-generator lists and SA-1B objects) for a 4x3 image.
// Bad input must end in lesseg::Error(bad_input); accepted masks are image-sized and decode.
#include <cstddef>
#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

#include "fuzz_check.h"
#include "lesseg/core/error.h"
#include "lesseg/io/sam_masks.h"

namespace sam = lesseg::sam;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<sam::Mask> masks;
  try {
    masks = sam::parse_masks(text, "fuzz.json", 4, 3);
  } catch (const lesseg::Error& e) {
    FUZZ_CHECK(e.code() == lesseg::ExitCode::bad_input);
    return 0;
  }
  for (const auto& m : masks) {
    FUZZ_CHECK(m.rle.height == 4 && m.rle.width == 3);
    FUZZ_CHECK(m.area >= 0 && m.predicted_iou >= 0 && m.stability_score >= 0);
    const cv::Mat pixels = lesseg::rle::decode(m.rle);
    FUZZ_CHECK(pixels.rows == 4 && pixels.cols == 3);
  }
  return 0;
}
