#pragma once
// Self-supervised views: one image becomes several augmented crops (SimCLR's two views, DINO's
// global + local multi-crop, SAMCLR's views inside one region). Made in the loader's worker threads.
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "lesseg/data/dataset.h"

namespace lesseg {

class Config;

// One kind of view (ref: torchvision RandomResizedCrop + the SimCLR/DINO augmentation stacks).
struct ViewSpec {
  int size = 224;                           // output side (square)
  std::array<double, 2> scale{0.08, 1.0};   // area fraction range of the random resized crop
  std::array<double, 2> ratio{3.0 / 4.0, 4.0 / 3.0};
  double flip = 0.5;
  double jitter_prob = 0.8;
  double brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
  double grayscale = 0.2;
  double blur = 0.5;       // probability of a Gaussian blur
  std::array<double, 2> blur_sigma{0.1, 2.0};  // sigma range in pixels at a 224 px global view
  double blur_scale = 1.0;  // global view side / 224: every view of a recipe blurs with the same pixel sigma
  double solarize = 0.0;   // probability of inverting pixels >= 128
};

// ref: torchvision RandomResizedCrop.get_params: 10 tries of a random area fraction in `scale` and a
// log-uniform aspect ratio in `ratio` at a random position, else a central crop clamped to `ratio`.
cv::Rect random_resized_crop_box(cv::Size image, const std::array<double, 2>& scale,
                                 const std::array<double, 2>& ratio, std::mt19937_64& rng);

// ref: SimCLR: the blur kernel is 10 % of the view side (radius side / 20, odd), widened to +-3 sigma
// where that is larger (DINO's local crops keep the global crops' pixel sigma).
int blur_kernel_size(int view_side, double sigma);
// Sigma for a draw `u` in [0, 1): the spec's range scaled by blur_scale, so a recipe shrunk from
// 224 px to 48 px blurs its views as the full-size recipe would, instead of erasing them.
double blur_sigma(const ViewSpec& spec, double u);

// The spec's photometric steps on a view, in place, pixels left where they are: colour jitter
// (torchvision's random order), grayscale, Gaussian blur (kernel from spec.size), solarization.
void photometric_augment(cv::Mat& view, const ViewSpec& spec, std::mt19937_64& rng);

// The augmented views of one image, in spec order: random resized crop (bilinear, square), flip,
// colour jitter (torchvision's random order), grayscale, Gaussian blur, solarization.
std::vector<cv::Mat> make_views(const cv::Mat& rgb, const std::vector<ViewSpec>& specs, std::mt19937_64& rng);

struct Views {
  std::vector<cv::Mat> images;  // CV_8UC3 RGB, view v has size specs[v].size for every sample
  bool fallback = false;        // true when a region sampler fell back to whole-image views
};

// Turns a dataset sample into its views; thread-safe (called from loader workers).
class ViewMaker {
 public:
  virtual ~ViewMaker() = default;
  virtual Views make(const SegSample& sample, size_t dataset_index, std::mt19937_64& rng) const = 0;
  virtual size_t num_views() const = 0;
};
using ViewMakerPtr = std::shared_ptr<const ViewMaker>;

// Views of the whole image (SimCLR, DINO, MAE).
class ImageViewMaker : public ViewMaker {
 public:
  explicit ImageViewMaker(std::vector<ViewSpec> specs) : specs_(std::move(specs)) {}
  Views make(const SegSample& sample, size_t dataset_index, std::mt19937_64& rng) const override;
  size_t num_views() const override { return specs_.size(); }

 private:
  std::vector<ViewSpec> specs_;
};

// The view list configured under `views:` (global views first, then local ones).
std::vector<ViewSpec> view_specs_from(const Config& config);

}  // namespace lesseg
