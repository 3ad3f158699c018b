#include "lesseg/io/sam_masks.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg::sam {
namespace {

using nlohmann::json;

// Scalars as JSON, arrays and objects by type only (a deeply nested value would overflow dump()).
std::string value_text(const json& v) { return v.is_structured() ? std::string("<") + v.type_name() + ">" : v.dump(); }

std::invalid_argument bad(const std::string& reason) { return std::invalid_argument(reason); }

double non_negative(const json& v, const std::string& what) {
  if (!v.is_number()) throw bad("'" + what + "' must be a number, got " + value_text(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < 0) throw bad("'" + what + "' must be finite and >= 0, got " + value_text(v));
  return d;
}

int64_t size_value(const json& v) {
  const double d = non_negative(v, "size");
  if (std::floor(d) != d || d > 1e9) throw bad("'size' values must be integers, got " + value_text(v));
  return static_cast<int64_t>(d);
}

// A list of `n` non-negative numbers (n = 0: any length).
std::vector<double> numbers(const json& v, const std::string& what, size_t n) {
  if (!v.is_array() || (n && v.size() != n))
    throw bad("'" + what + "' must be a list of " + (n ? std::to_string(n) + " " : "") + "numbers");
  std::vector<double> out;
  for (const json& x : v) out.push_back(non_negative(x, what));
  return out;
}

rle::Rle counts_array(const json& counts, int64_t h, int64_t w) {
  rle::Rle r{h, w, {}};
  r.counts.reserve(counts.size());
  for (const json& c : counts) {
    const double v = non_negative(c, "counts");
    if (std::floor(v) != v || v > double(std::numeric_limits<uint32_t>::max()))
      throw bad("RLE count is not a 32-bit unsigned integer: " + value_text(c));
    r.counts.push_back(static_cast<uint32_t>(v));
  }
  rle::validate(r);  // counts must sum to h * w
  return r;
}

// `segmentation`: COCO RLE with compressed (string) or uncompressed (list) counts, image-sized.
rle::Rle parse_segmentation(const json& record, int64_t height, int64_t width) {
  auto it = record.find("segmentation");
  if (it == record.end()) throw bad("missing 'segmentation'");
  const json& seg = *it;
  if (!seg.is_object() || !seg.contains("size") || !seg.contains("counts"))
    throw bad("'segmentation' must be a COCO RLE object {size, counts}, got " + value_text(seg));
  const json& size = seg["size"];
  if (!size.is_array() || size.size() != 2) throw bad("RLE 'size' must be [height, width]");
  const int64_t h = size_value(size[0]), w = size_value(size[1]);
  if (h != height || w != width)
    throw bad("mask size " + std::to_string(w) + "x" + std::to_string(h) + " differs from the image size " +
              std::to_string(width) + "x" + std::to_string(height));
  const json& counts = seg["counts"];
  if (counts.is_string()) return rle::from_string(counts.get<std::string>(), h, w);
  if (counts.is_array()) return counts_array(counts, h, w);
  throw bad("RLE 'counts' must be a string or a list of integers, got " + value_text(counts));
}

double optional_number(const json& record, const char* key, double fallback) {
  auto it = record.find(key);
  return it == record.end() || it->is_null() ? fallback : non_negative(*it, key);
}

Mask parse_record(const json& record, int64_t height, int64_t width) {
  if (!record.is_object()) throw bad("a mask record must be a JSON object, got " + value_text(record));
  Mask m;
  m.rle = parse_segmentation(record, height, width);
  m.area = optional_number(record, "area", double(rle::area(m.rle)));
  auto box = record.find("bbox");
  if (box != record.end() && !box->is_null()) {
    auto v = numbers(*box, "bbox", 4);
    m.bbox = {v[0], v[1], v[2], v[3]};
  } else {
    m.bbox = rle::bbox(m.rle);
  }
  m.predicted_iou = optional_number(record, "predicted_iou", 0.0);
  m.stability_score = optional_number(record, "stability_score", 0.0);
  if (record.contains("point_coords")) {
    const json& points = record["point_coords"];
    if (!points.is_array()) throw bad("'point_coords' must be a list of [x, y] points");
    for (const json& p : points) numbers(p, "point_coords", 2);
  }
  if (record.contains("crop_box")) numbers(record["crop_box"], "crop_box", 4);
  return m;
}

// SA-1B's `image` entry, when it gives a size, must agree with the image the caller loaded.
void check_sa1b_image(const json& image, int64_t height, int64_t width) {
  if (!image.is_object()) throw bad("'image' must be a JSON object");
  for (const auto& [key, expected] : {std::pair<const char*, int64_t>{"height", height}, {"width", width}}) {
    if (!image.contains(key)) continue;
    const int64_t value = size_value(image[key]);
    if (value != expected)
      throw bad(std::string("'image.") + key + "' is " + std::to_string(value) + " but the image's is " +
                std::to_string(expected));
  }
}

// The list of mask records in either file shape.
const json& records_of(const json& root, int64_t height, int64_t width) {
  if (root.is_array()) return root;
  if (root.is_object() && root.contains("annotations")) {
    if (root.contains("image")) check_sa1b_image(root["image"], height, width);
    const json& anns = root["annotations"];
    if (!anns.is_array()) throw bad("'annotations' must be a list");
    return anns;
  }
  throw bad("top level must be a list of mask records (SAM automatic mask generator) or an SA-1B object "
            "{\"image\": ..., \"annotations\": [...]}, got " + value_text(root));
}

}  // namespace

std::vector<Mask> parse_masks(const std::string& json_text, const std::filesystem::path& origin, int64_t height,
                              int64_t width) {
  if (height <= 0 || width <= 0) throw_bad_input(origin, "image size must be positive");
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    throw_bad_input(origin, std::string("not valid JSON: ") + e.what());
  }
  const json* records = nullptr;
  try {
    records = &records_of(root, height, width);
  } catch (const std::exception& e) {
    throw_bad_input(origin, e.what());
  }
  std::vector<Mask> masks;
  masks.reserve(records->size());
  for (size_t i = 0; i < records->size(); ++i) {
    try {
      masks.push_back(parse_record((*records)[i], height, width));
    } catch (const std::exception& e) {
      throw_bad_input(origin, "mask #" + std::to_string(i) + ": " + e.what());
    }
  }
  return masks;
}

std::vector<Mask> read_masks(const std::filesystem::path& file, int64_t height, int64_t width) {
  require_readable_file(file);
  return parse_masks(read_file(file), file, height, width);
}

}  // namespace lesseg::sam
