#pragma once
// Per-image mask files written by SAM's automatic mask generator (a JSON list of records) or shipped
// with SA-1B ({"image": {...}, "annotations": [...]}); SAMCLR cuts images into regions with them.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lesseg/io/rle.h"

namespace lesseg::sam {

struct Mask {
  rle::Rle rle;                   // COCO RLE, image-sized
  double area = 0;                // pixels, as stored (computed from the RLE when absent)
  std::array<double, 4> bbox{};   // x, y, w, h, as stored (computed when absent)
  double predicted_iou = 0;       // 0 when absent
  double stability_score = 0;     // 0 when absent
};

// Reads one image's masks; every mask must be `height` x `width` (the image's size). Any problem
// (unreadable file, not JSON, wrong shape, bad RLE, wrong size, negative or non-finite numbers) is
// an Error(bad_input) naming the file, the record and the reason.
std::vector<Mask> read_masks(const std::filesystem::path& file, int64_t height, int64_t width);
// The same from the file's text; `origin` names the file in errors.
std::vector<Mask> parse_masks(const std::string& json_text, const std::filesystem::path& origin, int64_t height,
                              int64_t width);

}  // namespace lesseg::sam
