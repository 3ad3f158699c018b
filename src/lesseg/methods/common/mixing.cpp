#include "lesseg/methods/common/mixing.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

namespace {

double uniform(std::mt19937_64& rng, double low, double high) {
  return std::uniform_real_distribution<double>(low, high)(rng);
}

}  // namespace

at::Tensor cutmix_boxes(int64_t batch, int64_t height, int64_t width, const CutMixOptions& options,
                        std::mt19937_64& rng) {
  if (!(options.area_min > 0 && options.area_min <= options.area_max && options.area_max <= 1 &&
        options.ratio_min > 0 && options.ratio_min <= 1))
    throw_usage("CutMix needs 0 < area_min <= area_max <= 1 and 0 < ratio_min <= 1");
  auto boxes = torch::zeros({batch, height, width}, torch::kBool);
  for (int64_t b = 0; b < batch; ++b) {
    if (uniform(rng, 0, 1) >= options.probability) continue;
    const double area = uniform(rng, options.area_min, options.area_max) * double(height * width);
    // Redrawn until inside, as UniMatch; a box that can never fit (a thin image) ends after 100 tries.
    for (int attempt = 0; attempt < 100; ++attempt) {
      const double ratio = uniform(rng, options.ratio_min, 1.0 / options.ratio_min);
      const auto w = static_cast<int64_t>(std::sqrt(area / ratio));
      const auto h = static_cast<int64_t>(std::sqrt(area * ratio));
      const int64_t x = std::uniform_int_distribution<int64_t>(0, width - 1)(rng);
      const int64_t y = std::uniform_int_distribution<int64_t>(0, height - 1)(rng);
      if (x + w > width || y + h > height) continue;
      boxes[b].slice(0, y, y + h).slice(1, x, x + w).fill_(true);
      break;
    }
  }
  return boxes;
}

at::Tensor classmix_masks(const at::Tensor& labels, int64_t ignore_index, std::mt19937_64& rng) {
  if (labels.dim() != 3) throw_usage("ClassMix needs labels [B, H, W]");
  auto masks = torch::zeros(labels.sizes(), labels.options().dtype(torch::kBool));
  for (int64_t b = 0; b < labels.size(0); ++b) {
    const auto label = labels[b].to(torch::kLong);
    auto present = std::get<0>(at::_unique(label.flatten()));  // sorted, so the draw depends on the rng alone
    present = present.masked_select(present.ne(ignore_index)).contiguous();
    std::vector<int64_t> classes(present.data_ptr<int64_t>(), present.data_ptr<int64_t>() + present.numel());
    std::shuffle(classes.begin(), classes.end(), rng);
    classes.resize((classes.size() + 1) / 2);
    if (classes.empty()) continue;
    auto chosen = torch::tensor(classes, torch::kLong).to(labels.device());
    masks[b] = torch::isin(label, chosen);
  }
  return masks;
}

at::Tensor mix(const at::Tensor& target, const at::Tensor& source, const at::Tensor& mask) {
  if (target.sizes() != source.sizes()) throw_usage("mix: target and source differ in shape");
  if (target.dim() == 4) return torch::where(mask.unsqueeze(1), source, target);
  if (target.dim() == 3) return torch::where(mask, source, target);
  throw_usage("mix: expected [B, C, H, W] or [B, H, W] tensors");
}

}  // namespace lesseg
