#pragma once
// Joint image + mask transforms on OpenCV matrices. Geometry applies to both (nearest-neighbour for
// masks, padding with the ignore index); photometric changes apply to the image only.
#include <cstdint>
#include <random>

#include "lesseg/data/dataset.h"

namespace lesseg {

struct AugmentOptions {
  int resize_h = 0, resize_w = 0;  // fixed resize first (0 = keep)
  int crop_h = 0, crop_w = 0;      // random crop (0 = no crop)
  double scale_min = 1.0, scale_max = 1.0;
  bool flip = false;
  double color_jitter = 0.0;  // max relative change of brightness, contrast, saturation
  double blur_prob = 0.0;     // probability of a Gaussian blur with sigma in [0.1, 2]
};

void resize_sample(SegSample& sample, int height, int width);
void random_scale(SegSample& sample, double scale_min, double scale_max, std::mt19937_64& rng);
// Pads with 0 (image) / ignore_index (mask) up to the crop, then crops at a random position.
void random_crop(SegSample& sample, int height, int width, int ignore_index, std::mt19937_64& rng);
void random_flip(SegSample& sample, std::mt19937_64& rng);
void color_jitter(cv::Mat& image, double strength, std::mt19937_64& rng);
void random_blur(cv::Mat& image, double probability, std::mt19937_64& rng);

// All of the above in order, as configured.
void augment(SegSample& sample, const AugmentOptions& options, int ignore_index, std::mt19937_64& rng);

}  // namespace lesseg
