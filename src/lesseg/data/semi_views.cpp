#include "lesseg/data/semi_views.h"

#include <algorithm>

namespace lesseg {

ViewSpec strong_view_spec(int view_side) {
  ViewSpec spec;
  spec.size = view_side;
  spec.flip = 0.0;
  spec.jitter_prob = 0.8;
  spec.brightness = spec.contrast = spec.saturation = 0.5;
  spec.hue = 0.25;
  spec.grayscale = 0.2;
  spec.blur = 0.5;
  spec.blur_sigma = {0.1, 2.0};
  spec.blur_scale = 1.0;  // sigma in pixels of the crop, as UniMatch's PIL blur
  spec.solarize = 0.0;
  return spec;
}

cv::Mat strong_view(const cv::Mat& weak, const ViewSpec& spec, std::mt19937_64& rng) {
  cv::Mat view = weak.clone();
  photometric_augment(view, spec, rng);
  return view;
}

}  // namespace lesseg
