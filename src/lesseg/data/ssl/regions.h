#pragma once
// SAMCLR's regions: an image is cut into object regions (SAM masks, a built-in graph-based proposer,
// or ground-truth instances), and both views of a sample are drawn inside one region's enlarged box.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <opencv2/core.hpp>

#include "lesseg/data/ssl/views.h"
#include "lesseg/io/coco.h"
#include "lesseg/io/rle.h"

namespace lesseg {

struct Region {
  cv::Rect box;       // tight bounding box of the region's mask
  int64_t area = 0;   // pixels
  size_t source = 0;  // index of the mask in the list it was grouped from
};

struct RegionRules {
  int64_t min_area = 600;  // regions with area <= this are dropped
  double contain = 0.9;    // a mask with more than this fraction inside a larger object's mask joins it
};

// ref: SAMCLR (benji2264/s3same) region filtering: masks sorted by area (descending); a mask joins the
// first larger object holding > `contain` of it, else it starts a new object; regions with area <=
// min_area are dropped and the largest region of each object is kept. Masks must share one size.
// Returns one region per surviving object, largest first.
std::vector<Region> group_regions(const std::vector<rle::Rle>& masks, const RegionRules& rules);

// One mask per distinct label of a CV_32S label map (labels >= 0), built in one pass.
std::vector<rle::Rle> label_masks(const cv::Mat& labels);

// The box enlarged by `scale` of its width and height (1.0 doubles them), centred, clipped to the image.
cv::Rect enlarge_box(const cv::Rect& box, double scale, cv::Size image);

// Where a sample's regions come from. Thread-safe.
class RegionSource {
 public:
  virtual ~RegionSource() = default;
  // Grouped and filtered regions of one sample; throws Error(bad_input) naming a broken region file.
  virtual std::vector<Region> regions(const SegSample& sample, size_t dataset_index) const = 0;
};
using RegionSourcePtr = std::shared_ptr<const RegionSource>;

// SAM automatic-mask-generator / SA-1B files: <dir>/<sample id>.json.
class SamRegionSource : public RegionSource {
 public:
  SamRegionSource(std::filesystem::path dir, RegionRules rules);
  std::vector<Region> regions(const SegSample& sample, size_t dataset_index) const override;

 private:
  std::filesystem::path dir_;
  RegionRules rules_;
};

struct ProposerOptions {
  double sigma = 0.5;  // Gaussian smoothing before segmentation
  double k = 300;      // larger k: larger segments (Felzenszwalb-Huttenlocher)
  int min_size = 100;  // segments smaller than this are merged into a neighbour
};

// Built-in unsupervised proposer: OpenCV ximgproc graph-based segmentation, one mask per segment.
std::vector<rle::Rle> propose_masks(const cv::Mat& rgb, const ProposerOptions& options);

class ProposerRegionSource : public RegionSource {
 public:
  ProposerRegionSource(ProposerOptions options, RegionRules rules) : options_(options), rules_(rules) {}
  std::vector<Region> regions(const SegSample& sample, size_t dataset_index) const override;

 private:
  ProposerOptions options_;
  RegionRules rules_;
};

// Ground-truth instance masks from a COCO instances JSON, matched to samples by file-name stem.
// Crowd annotations are left out (they are groups, not objects).
class GtRegionSource : public RegionSource {
 public:
  GtRegionSource(const std::filesystem::path& instances_json, RegionRules rules);
  std::vector<Region> regions(const SegSample& sample, size_t dataset_index) const override;

 private:
  std::filesystem::path file_;
  coco::Dataset coco_;
  std::unordered_map<std::string, size_t> image_by_stem_;
  RegionRules rules_;
};

// SAMCLR views: one region per sample uniformly at random, its box enlarged by box_scale, then the
// usual views inside that crop. No usable region: whole-image views with Views::fallback set.
// Regions are computed once per sample id and cached.
class RegionViewMaker : public ViewMaker {
 public:
  RegionViewMaker(RegionSourcePtr source, std::vector<ViewSpec> specs, double box_scale);
  Views make(const SegSample& sample, size_t dataset_index, std::mt19937_64& rng) const override;
  size_t num_views() const override { return specs_.size(); }

 private:
  std::vector<Region> regions_of(const SegSample& sample, size_t dataset_index) const;

  RegionSourcePtr source_;
  std::vector<ViewSpec> specs_;
  double box_scale_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::vector<Region>> cache_;
};

// `method` simclr | dino | mae: whole-image views; samclr: region views from `samclr.regions`.
// Other methods and invalid `views:` / `samclr:` values are usage errors naming the key.
ViewMakerPtr view_maker_from(const Config& config);

}  // namespace lesseg
