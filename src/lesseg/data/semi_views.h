#pragma once
// Weak and strong views for semi-supervised training (FixMatch / UniMatch): the weak view is the
// ordinary training crop (resize, random scale, crop, flip: data/transforms.h); the strong view is
// that same crop with photometric changes only, so the pseudo-label predicted on the weak view
// stays pixel-aligned with it. CutMix and ClassMix, which move pixels between images, act on the
// batch tensors together with the pseudo-labels (methods/common/mixing.h).
#include <random>

#include <opencv2/core.hpp>

#include "lesseg/data/ssl/views.h"

namespace lesseg {

// UniMatch's strong view (LiheYoung/UniMatch dataset/semi.py): colour jitter (brightness,
// contrast, saturation 0.5, hue 0.25) with probability 0.8, grayscale 0.2, Gaussian blur with
// sigma in [0.1, 2] px with probability 0.5. view_side sets the blur kernel (views.h). No
// geometry, no solarization.
ViewSpec strong_view_spec(int view_side);

// A photometric copy of `weak` (CV_8UC3 RGB), the same size, every pixel where it was.
cv::Mat strong_view(const cv::Mat& weak, const ViewSpec& spec, std::mt19937_64& rng);

}  // namespace lesseg
