#pragma once
// Rare-class sampling (DAFormer, used by CSA on GTA5 / SYNTHIA): a labeled source image is drawn
// by first drawing a class, the rarer the likelier, then an image that shows it. Common classes
// (road, sky) fill most synthetic frames; without this the rare ones (rider, train) are barely seen.
#include <cstdint>
#include <vector>

#include "lesseg/data/dataset.h"

namespace lesseg {

// Pixels of each class in each image: counts[i][c] (ignore_index left out), read with `threads`
// threads.
std::vector<std::vector<int64_t>> class_pixel_counts(const SegDataset& dataset, int threads);

struct RareClassSampling {
  std::vector<double> class_probability;  // p_c, 0 for classes no image shows
  std::vector<double> image_weight;       // P(image i) = sum_c p_c [i shows c] / #images showing c
};

// ref: DAFormer get_rcs_class_probs: f_c = share of class c in all labeled pixels, p_c =
// softmax((1 - f_c) / temperature) over the classes that occur; an image "shows" c when it holds
// at least min_pixels pixels of it (DAFormer: 3000 at 1280x720 GTA5 crops of 512).
RareClassSampling rare_class_sampling(const std::vector<std::vector<int64_t>>& counts, int num_classes,
                                      double temperature, int64_t min_pixels);

// The labeled images' sampling weights from uda.rare_class_temperature (empty when it is 0: uniform),
// the class probabilities logged.
class Config;
std::vector<double> rare_class_weights_from(const Config& config, const SegDataset& labeled);

}  // namespace lesseg
