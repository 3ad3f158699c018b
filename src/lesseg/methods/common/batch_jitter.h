#pragma once
// Photometric changes of a batch already on the device (DACS / DAFormer strong_transform, applied
// to ClassMix'ed images after mixing, when the pixels of two images share one tensor). The loader's
// views (data/semi_views.h) act on single images before batching; this is their batch form.
#include <array>
#include <random>

#include <ATen/core/Tensor.h>

namespace lesseg {

// ref: DAFormer dacs.py / transforms.py: colour jitter (brightness, contrast, saturation and hue
// strength `jitter_strength`) unless a uniform draw falls at or below `jitter_skip` (so applied with
// probability 1 - 0.2), Gaussian blur with sigma uniform in [0.15, 1.15] with probability 0.5,
// kernel about 0.1 of the image height (odd).
struct BatchJitterOptions {
  double jitter_strength = 0.2;
  double jitter_skip = 0.2;
  double blur_probability = 0.5;
  double sigma_min = 0.15, sigma_max = 1.15;
};

// images: normalized [B, 3, H, W] (mean / std as the loader's); each image draws its own factors.
// Hue is shifted as a rotation of the chroma plane in YIQ space (kornia rotates the HSV hue).
at::Tensor jitter_and_blur(const at::Tensor& images, const std::array<double, 3>& mean, const std::array<double, 3>& std,
                           const BatchJitterOptions& options, std::mt19937_64& rng);

}  // namespace lesseg
