#include "lesseg/io/coco.h"

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/io/image_io.h"

namespace lesseg::coco {
namespace {

using nlohmann::json;

// A value for an error message: scalars as JSON, arrays and objects by type only (dump() recurses,
// and a deeply nested value from the file would overflow the stack).
std::string value_text(const json& v) { return v.is_structured() ? std::string("<") + v.type_name() + ">" : v.dump(); }

const json& field(const json& obj, const char* key) {
  if (!obj.is_object()) throw std::invalid_argument("expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) throw std::invalid_argument(std::string("missing field '") + key + "'");
  return *it;
}

// Integers may be written as 3 or 3.0; anything else is rejected.
int64_t as_int(const json& v, const char* what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  throw std::invalid_argument(std::string("field '") + what + "' must be an integer, got " + value_text(v));
}

int64_t int_field(const json& obj, const char* key) { return as_int(field(obj, key), key); }

double number_or(const json& obj, const char* key, double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw std::invalid_argument(std::string("field '") + key + "' must be a number");
  return it->get<double>();
}

bool crowd_flag(const json& obj) {
  auto it = obj.find("iscrowd");
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return as_int(*it, "iscrowd") != 0;
}

const json& array_field(const json& root, const char* key, bool required) {
  static const json empty = json::array();
  auto it = root.find(key);
  if (it == root.end()) {
    if (required) throw std::invalid_argument(std::string("missing top-level array '") + key + "'");
    return empty;
  }
  if (!it->is_array()) throw std::invalid_argument(std::string("'") + key + "' must be an array");
  return *it;
}

Image parse_image(const json& j) {
  Image im;
  im.id = int_field(j, "id");
  const json& name = field(j, "file_name");
  if (!name.is_string()) throw std::invalid_argument("field 'file_name' must be a string");
  im.file_name = name.get<std::string>();
  im.height = int_field(j, "height");
  im.width = int_field(j, "width");
  if (im.height <= 0 || im.width <= 0 || im.width > kMaxImagePixels / im.height)  // no overflow of h * w
    throw std::invalid_argument("image size " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                                " is not positive or exceeds " + std::to_string(kMaxImagePixels) + " pixels");
  return im;
}

rle::Rle parse_polygons(const json& seg, const Image& im) {
  std::vector<std::vector<double>> polys;
  for (const json& p : seg) {
    if (!p.is_array()) throw std::invalid_argument("polygon must be an array of numbers");
    std::vector<double> xy;
    xy.reserve(p.size());
    for (const json& v : p) {
      if (!v.is_number()) throw std::invalid_argument("polygon coordinate is not a number: " + value_text(v));
      xy.push_back(v.get<double>());
    }
    if (xy.size() % 2 != 0)
      throw std::invalid_argument("polygon has an odd coordinate count (" + std::to_string(xy.size()) + ")");
    polys.push_back(std::move(xy));
  }
  return rle::from_polygons(polys, im.height, im.width);
}

rle::Rle parse_rle_object(const json& seg, const Image& im) {
  const json& size = field(seg, "size");
  if (!size.is_array() || size.size() != 2) throw std::invalid_argument("RLE 'size' must be [height, width]");
  int64_t h = as_int(size[0], "size"), w = as_int(size[1], "size");
  if (h != im.height || w != im.width)
    throw std::invalid_argument("RLE size " + std::to_string(h) + "x" + std::to_string(w) + " differs from image " +
                                std::to_string(im.id) + " size " + std::to_string(im.height) + "x" +
                                std::to_string(im.width));
  const json& counts = field(seg, "counts");
  if (counts.is_string()) return rle::from_string(counts.get<std::string>(), h, w);
  if (!counts.is_array()) throw std::invalid_argument("RLE 'counts' must be a string or an array");
  rle::Rle r{h, w, {}};
  r.counts.reserve(counts.size());
  for (const json& c : counts) {
    int64_t v = as_int(c, "counts");
    if (v < 0 || v > int64_t(std::numeric_limits<uint32_t>::max()))
      throw std::invalid_argument("RLE count out of range: " + std::to_string(v));
    r.counts.push_back(uint32_t(v));
  }
  rle::validate(r);
  return r;
}

rle::Rle parse_segmentation(const json& seg, const Image& im) {
  if (seg.is_array()) return parse_polygons(seg, im);
  if (seg.is_object()) return parse_rle_object(seg, im);
  throw std::invalid_argument("'segmentation' must be polygons or an RLE object");
}

Annotation parse_annotation(const json& j, const std::unordered_map<int64_t, size_t>& image_index,
                            const std::vector<Image>& images, const std::set<int64_t>& category_ids) {
  Annotation a;
  a.id = int_field(j, "id");
  a.image_id = int_field(j, "image_id");
  a.category_id = int_field(j, "category_id");
  auto it = image_index.find(a.image_id);
  if (it == image_index.end()) throw std::invalid_argument("unknown image id " + std::to_string(a.image_id));
  if (!category_ids.empty() && !category_ids.count(a.category_id))
    throw std::invalid_argument("unknown category id " + std::to_string(a.category_id));
  a.iscrowd = crowd_flag(j);
  a.area = number_or(j, "area", 0.0);
  a.score = number_or(j, "score", -1.0);
  a.mask = parse_segmentation(field(j, "segmentation"), images[it->second]);
  return a;
}

std::string annotation_label(const json& j, size_t index) {
  if (j.is_object()) {
    auto it = j.find("id");
    if (it != j.end() && it->is_number()) return "annotation id " + it->dump();
  }
  return "annotation #" + std::to_string(index);
}

json rle_json(const rle::Rle& r) { return {{"size", {r.height, r.width}}, {"counts", rle::to_string(r)}}; }

// Category id -> class index (position + 1) for semantic masks.
std::unordered_map<int64_t, int> category_index(const Dataset& d) {
  std::unordered_map<int64_t, int> index;
  for (size_t i = 0; i < d.categories.size(); ++i) index[d.categories[i].id] = static_cast<int>(i) + 1;
  return index;
}

cv::Mat annotation_pixels(const Annotation& a, const Image& image) {
  if (a.mask.height != image.height || a.mask.width != image.width)
    throw Error(ExitCode::bad_input, "annotation id " + std::to_string(a.id) + ": mask size differs from image " +
                                         std::to_string(image.id));
  try {
    return rle::decode(a.mask);
  } catch (const std::invalid_argument& e) {
    throw Error(ExitCode::bad_input, "annotation id " + std::to_string(a.id) + ": " + e.what());
  }
}

const std::vector<size_t>& image_annotations(const Dataset& d, int64_t image_id) {
  static const std::vector<size_t> none;
  auto it = d.annotations_by_image.find(image_id);
  return it == d.annotations_by_image.end() ? none : it->second;
}

}  // namespace

Dataset read(const std::filesystem::path& json_file) { return parse(read_file(json_file), json_file); }

Dataset parse(const std::string& json_text, const std::filesystem::path& json_file) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    throw_bad_input(json_file, std::string("malformed JSON: ") + e.what());
  }
  if (!root.is_object()) throw_bad_input(json_file, "top level must be a JSON object");
  Dataset d;
  std::unordered_map<int64_t, size_t> image_index;
  std::set<int64_t> category_ids;
  const json* anns = nullptr;
  try {
    for (const json& j : array_field(root, "images", true)) {
      d.images.push_back(parse_image(j));
      if (!image_index.emplace(d.images.back().id, d.images.size() - 1).second)
        throw std::invalid_argument("duplicate image id " + std::to_string(d.images.back().id));
    }
    for (const json& j : array_field(root, "categories", false)) {
      const json& name = field(j, "name");
      if (!name.is_string()) throw std::invalid_argument("category 'name' must be a string");
      d.categories.push_back(Category{int_field(j, "id"), name.get<std::string>()});
      if (!category_ids.insert(d.categories.back().id).second)
        throw std::invalid_argument("duplicate category id " + std::to_string(d.categories.back().id));
    }
    anns = &array_field(root, "annotations", false);
  } catch (const std::exception& e) {
    throw_bad_input(json_file, e.what());
  }
  for (size_t i = 0; i < anns->size(); ++i) {
    const json& j = (*anns)[i];
    try {
      d.annotations.push_back(parse_annotation(j, image_index, d.images, category_ids));
    } catch (const std::exception& e) {
      throw_bad_input(json_file, annotation_label(j, i) + ": " + e.what());
    }
    d.annotations_by_image[d.annotations.back().image_id].push_back(i);
  }
  return d;
}

void write(const std::filesystem::path& json_file, const Dataset& dataset) {
  json images = json::array(), annotations = json::array(), categories = json::array();
  for (const Image& im : dataset.images)
    images.push_back({{"id", im.id}, {"file_name", im.file_name}, {"height", im.height}, {"width", im.width}});
  for (const Annotation& a : dataset.annotations) {
    auto box = rle::bbox(a.mask);
    // The stored area is kept so a read/write round trip is lossless; 0 means "not given".
    double area = a.area != 0 ? a.area : double(rle::area(a.mask));
    annotations.push_back({{"id", a.id},
                           {"image_id", a.image_id},
                           {"category_id", a.category_id},
                           {"segmentation", rle_json(a.mask)},
                           {"area", area},
                           {"bbox", {box[0], box[1], box[2], box[3]}},
                           {"iscrowd", a.iscrowd ? 1 : 0}});
    if (a.score >= 0) annotations.back()["score"] = a.score;
  }
  for (const Category& c : dataset.categories) categories.push_back({{"id", c.id}, {"name", c.name}});
  json root = {{"images", images}, {"annotations", annotations}, {"categories", categories}};
  write_file_atomic(json_file, root.dump());
}

cv::Mat semantic_mask(const Dataset& dataset, const Image& image, int ignore_index) {
  auto index = category_index(dataset);
  cv::Mat out = cv::Mat::zeros(static_cast<int>(image.height), static_cast<int>(image.width), CV_8U);
  for (size_t i : image_annotations(dataset, image.id)) {
    const Annotation& a = dataset.annotations.at(i);
    int value = ignore_index;
    if (!a.iscrowd) {
      auto it = index.find(a.category_id);
      if (it == index.end())
        throw Error(ExitCode::bad_input, "annotation id " + std::to_string(a.id) + ": unknown category id " +
                                             std::to_string(a.category_id));
      value = it->second;
    }
    if (value < 0 || value > 255)
      throw Error(ExitCode::bad_input, "class index " + std::to_string(value) + " does not fit an 8-bit mask");
    out.setTo(value, annotation_pixels(a, image));
  }
  return out;
}

cv::Mat instance_mask(const Dataset& dataset, const Image& image) {
  cv::Mat out = cv::Mat::zeros(static_cast<int>(image.height), static_cast<int>(image.width), CV_16U);
  const auto& anns = image_annotations(dataset, image.id);
  if (anns.size() > 65535)
    throw Error(ExitCode::bad_input, "image " + std::to_string(image.id) + " has more than 65535 instances");
  for (size_t k = 0; k < anns.size(); ++k)
    out.setTo(static_cast<int>(k + 1), annotation_pixels(dataset.annotations.at(anns[k]), image));
  return out;
}

}  // namespace lesseg::coco
