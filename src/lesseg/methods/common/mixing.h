#pragma once
// Mixing two batches pixel for pixel, shared by the semi-supervised and adaptation methods: CutMix
// boxes (UniMatch, CPS) and ClassMix masks (DACS, CSA). A mask [B, H, W] (bool) says where the
// source's pixels replace the target's; the same mask applied to images and to their (pseudo-)
// labels keeps them aligned.
#include <cstdint>
#include <random>

#include <ATen/core/Tensor.h>

namespace lesseg {

// ref: UniMatch obtain_cutmix_box: with `probability`, one box whose area is a uniform share in
// [area_min, area_max] of the image and whose aspect ratio h / w is uniform in [ratio_min,
// 1 / ratio_min], at a uniform position, redrawn until it fits inside; otherwise no box.
struct CutMixOptions {
  double probability = 0.5;
  double area_min = 0.02, area_max = 0.4;
  double ratio_min = 0.3;
};

// [batch, height, width] bool: one independent box (or none) per image.
at::Tensor cutmix_boxes(int64_t batch, int64_t height, int64_t width, const CutMixOptions& options,
                        std::mt19937_64& rng);

// ref: DACS / ClassMix (Olsson et al.): per image, ceil(n / 2) of the n classes present in its label
// map (ignore_index left out), drawn without replacement; the mask is where the label is one of them.
// labels: [B, H, W] integer.
at::Tensor classmix_masks(const at::Tensor& labels, int64_t ignore_index, std::mt19937_64& rng);

// `source` where mask is true, `target` elsewhere: images [B, C, H, W] or labels / confidences
// [B, H, W] (the mask broadcast over channels).
at::Tensor mix(const at::Tensor& target, const at::Tensor& source, const at::Tensor& mask);

}  // namespace lesseg
