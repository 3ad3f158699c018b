#include "lesseg/data/ssl/regions.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <opencv2/ximgproc/segmentation.hpp>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/io/sam_masks.h"

namespace lesseg {

namespace fs = std::filesystem;

namespace {

struct Candidate {
  size_t index = 0;
  int64_t area = 0;
  cv::Rect box;
};

cv::Rect rle_box(const rle::Rle& r) {
  const auto b = rle::bbox(r);
  return {int(b[0]), int(b[1]), int(b[2]), int(b[3])};
}

// True when more than `contain` of the mask lies inside the object. The boxes' overlap bounds the
// intersection, which skips the RLE intersection for far-apart masks.
bool mostly_inside(const rle::Rle& mask, const Candidate& m, const rle::Rle& object, const Candidate& o,
                   double contain) {
  const double needed = contain * double(m.area);
  if (double((m.box & o.box).area()) <= needed) return false;
  return double(rle::area(rle::merge({mask, object}, true))) > needed;
}

std::vector<Candidate> by_area_descending(const std::vector<rle::Rle>& masks) {
  std::vector<Candidate> all;
  for (size_t i = 0; i < masks.size(); ++i) {
    if (masks[i].height != masks[0].height || masks[i].width != masks[0].width)
      throw std::invalid_argument("group_regions: masks differ in size");
    const int64_t area = int64_t(rle::area(masks[i]));
    if (area > 0) all.push_back({i, area, rle_box(masks[i])});
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) { return a.area > b.area; });
  return all;
}

}  // namespace

std::vector<Region> group_regions(const std::vector<rle::Rle>& masks, const RegionRules& rules) {
  // Objects are the masks that joined no larger object; members of an object are never larger than
  // it, so its largest region above min_area is the object itself or none.
  std::vector<Candidate> objects;
  for (const Candidate& m : by_area_descending(masks)) {
    const bool member = std::any_of(objects.begin(), objects.end(), [&](const Candidate& o) {
      return mostly_inside(masks[m.index], m, masks[o.index], o, rules.contain);
    });
    if (!member) objects.push_back(m);
  }
  std::vector<Region> regions;
  for (const Candidate& o : objects)
    if (o.area > rules.min_area) regions.push_back({o.box, o.area, o.index});
  return regions;
}

std::vector<rle::Rle> label_masks(const cv::Mat& labels) {
  CV_Assert(labels.type() == CV_32S);
  if (labels.empty()) return {};
  double lo = 0, hi = 0;
  cv::minMaxLoc(labels, &lo, &hi);
  if (lo < 0) throw std::invalid_argument("label_masks: negative label");
  const size_t n = size_t(hi) + 1;
  std::vector<rle::Rle> masks(n, rle::Rle{labels.rows, labels.cols, {}});
  std::vector<uint32_t> end(n, 0);  // index just after each label's last pixel so far
  const cv::Mat columns = labels.t();  // row y of the transpose = column y: RLE order, contiguous
  uint32_t i = 0;
  for (int x = 0; x < columns.rows; ++x) {
    const int* row = columns.ptr<int>(x);
    for (int y = 0; y < columns.cols; ++y, ++i) {
      auto& counts = masks[size_t(row[y])].counts;
      uint32_t& last = end[size_t(row[y])];
      if (!counts.empty() && last == i) {
        ++counts.back();
      } else {
        counts.push_back(i - last);  // zeros since the previous run (the first may be 0)
        counts.push_back(1);
      }
      last = i + 1;
    }
  }
  std::vector<rle::Rle> present;
  for (size_t l = 0; l < n; ++l) {
    if (masks[l].counts.empty()) continue;
    if (end[l] < i) masks[l].counts.push_back(i - end[l]);
    present.push_back(std::move(masks[l]));
  }
  return present;
}

cv::Rect enlarge_box(const cv::Rect& box, double scale, cv::Size image) {
  const double dx = box.width * scale / 2, dy = box.height * scale / 2;
  const int x0 = std::max(0, int(std::floor(box.x - dx)));
  const int y0 = std::max(0, int(std::floor(box.y - dy)));
  const int x1 = std::min(image.width, int(std::ceil(box.x + box.width + dx)));
  const int y1 = std::min(image.height, int(std::ceil(box.y + box.height + dy)));
  return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}

// --- region sources ---

SamRegionSource::SamRegionSource(fs::path dir, RegionRules rules) : dir_(std::move(dir)), rules_(rules) {}

std::vector<Region> SamRegionSource::regions(const SegSample& sample, size_t) const {
  auto masks = sam::read_masks(dir_ / (sample.id + ".json"), sample.image.rows, sample.image.cols);
  std::vector<rle::Rle> rles;
  rles.reserve(masks.size());
  for (auto& m : masks) rles.push_back(std::move(m.rle));
  return group_regions(rles, rules_);
}

std::vector<rle::Rle> propose_masks(const cv::Mat& rgb, const ProposerOptions& options) {
  auto segmenter = cv::ximgproc::segmentation::createGraphSegmentation(options.sigma, float(options.k),
                                                                        options.min_size);
  cv::Mat labels;
  segmenter->processImage(rgb, labels);
  return label_masks(labels);
}

std::vector<Region> ProposerRegionSource::regions(const SegSample& sample, size_t) const {
  return group_regions(propose_masks(sample.image, options_), rules_);
}

GtRegionSource::GtRegionSource(const fs::path& instances_json, RegionRules rules)
    : file_(instances_json), coco_(coco::read(instances_json)), rules_(rules) {
  for (size_t i = 0; i < coco_.images.size(); ++i) {
    const std::string stem = fs::path(coco_.images[i].file_name).stem().string();
    if (!image_by_stem_.emplace(stem, i).second)
      throw_bad_input(file_, "two images share the file-name stem '" + stem + "'");
  }
}

std::vector<Region> GtRegionSource::regions(const SegSample& sample, size_t) const {
  auto it = image_by_stem_.find(sample.id);
  if (it == image_by_stem_.end()) throw_bad_input(file_, "no image with the file-name stem '" + sample.id + "'");
  const coco::Image& image = coco_.images[it->second];
  if (image.height != sample.image.rows || image.width != sample.image.cols)
    throw_bad_input(file_, "image '" + image.file_name + "' is " + std::to_string(image.width) + "x" +
                               std::to_string(image.height) + " here but " + std::to_string(sample.image.cols) +
                               "x" + std::to_string(sample.image.rows) + " on disk");
  std::vector<rle::Rle> masks;
  auto anns = coco_.annotations_by_image.find(image.id);
  if (anns != coco_.annotations_by_image.end())
    for (size_t a : anns->second)
      if (!coco_.annotations[a].iscrowd) masks.push_back(coco_.annotations[a].mask);
  return group_regions(masks, rules_);
}

// --- views inside a region ---

RegionViewMaker::RegionViewMaker(RegionSourcePtr source, std::vector<ViewSpec> specs, double box_scale)
    : source_(std::move(source)), specs_(std::move(specs)), box_scale_(box_scale) {
  if (!source_ || specs_.empty() || !(box_scale_ >= 0))
    throw std::invalid_argument("RegionViewMaker needs a source, views and box_scale >= 0");
}

std::vector<Region> RegionViewMaker::regions_of(const SegSample& sample, size_t dataset_index) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(sample.id);
    if (it != cache_.end()) return it->second;
  }
  // Computed outside the lock; two workers racing on one id compute the same regions.
  auto regions = source_->regions(sample, dataset_index);
  std::lock_guard<std::mutex> lock(mutex_);
  cache_.emplace(sample.id, regions);
  return regions;
}

Views RegionViewMaker::make(const SegSample& sample, size_t dataset_index, std::mt19937_64& rng) const {
  const auto regions = regions_of(sample, dataset_index);
  if (!regions.empty()) {
    const Region& region = regions[std::uniform_int_distribution<size_t>(0, regions.size() - 1)(rng)];
    const cv::Rect box = enlarge_box(region.box, box_scale_, sample.image.size());
    if (!box.empty()) return Views{make_views(sample.image(box), specs_, rng), false};
  }
  return Views{make_views(sample.image, specs_, rng), true};
}

// --- from the config ---

namespace {

double number_in(const Config& config, const std::string& key, double lo, double hi, bool lo_open = false) {
  const double v = config.get<double>(key);
  if (!(lo_open ? v > lo : v >= lo) || !(v <= hi))
    throw_usage("config key '" + key + "' must be in " + (lo_open ? "(" : "[") + std::to_string(lo) + ", " +
                std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

RegionRules rules_from(const Config& config) {
  RegionRules rules;
  rules.min_area = config.get<int64_t>("samclr.min_area");
  if (rules.min_area < 0) throw_usage("config key 'samclr.min_area' must be >= 0");
  rules.contain = number_in(config, "samclr.contain", 0.0, 1.0, true);
  return rules;
}

std::string required_path(const Config& config, const std::string& key, const std::string& regions) {
  const std::string path = config.get<std::string>(key);
  if (path.empty()) throw_usage("config key '" + key + "' must be set for samclr.regions: " + regions);
  return path;
}

RegionSourcePtr region_source_from(const Config& config) {
  const RegionRules rules = rules_from(config);
  const std::string regions = config.get<std::string>("samclr.regions");
  if (regions == "sam") {
    const fs::path dir = required_path(config, "samclr.sam_dir", regions);
    if (!fs::is_directory(dir)) throw_bad_input(dir, "samclr.sam_dir is not a folder");
    return std::make_shared<SamRegionSource>(dir, rules);
  }
  if (regions == "gt")
    return std::make_shared<GtRegionSource>(required_path(config, "samclr.gt_instances", regions), rules);
  if (regions != "proposer")
    throw_usage("config key 'samclr.regions' must be proposer | sam | gt, got '" + regions + "'");
  ProposerOptions options;
  options.sigma = number_in(config, "samclr.proposer_sigma", 0.0, 100.0);
  options.k = number_in(config, "samclr.proposer_k", 0.0, 1e9, true);
  options.min_size = config.get<int>("samclr.proposer_min_size");
  if (options.min_size < 0) throw_usage("config key 'samclr.proposer_min_size' must be >= 0");
  return std::make_shared<ProposerRegionSource>(options, rules);
}

}  // namespace

ViewMakerPtr view_maker_from(const Config& config) {
  const std::string method = config.get<std::string>("method");
  auto specs = view_specs_from(config);
  if (method == "simclr" || method == "dino" || method == "mae") return std::make_shared<ImageViewMaker>(specs);
  if (method != "samclr")
    throw_usage("config key 'method': '" + method + "' has no self-supervised views (simclr | samclr | dino | mae)");
  const double box_scale = number_in(config, "samclr.box_scale", 0.0, 100.0);
  return std::make_shared<RegionViewMaker>(region_source_from(config), std::move(specs), box_scale);
}

}  // namespace lesseg
