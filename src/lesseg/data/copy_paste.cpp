#include "lesseg/data/copy_paste.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <torch/torch.h>

#include "lesseg/nn/functional.h"

namespace lesseg {

namespace {

int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// Drops masks with no pixel.
at::Tensor non_empty(const at::Tensor& masks) {
  if (masks.size(0) == 0) return masks;
  return masks.index_select(0, masks.flatten(1).sum(1).gt(0).nonzero().squeeze(1));
}

}  // namespace

int64_t copy_paste(at::Tensor& images, std::vector<at::Tensor>& instances, const CopyPasteOptions& options,
                   std::mt19937_64& rng) {
  torch::NoGradGuard no_grad;
  const int64_t batch = images.size(0), height = images.size(2), width = images.size(3);
  const auto source_images = images.clone();
  const auto source_instances = instances;
  int64_t pasted = 0;
  for (int64_t b = 0; b < batch; ++b) {
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= options.probability) continue;
    const int64_t s = batch - 1 - b;
    const at::Tensor source = non_empty(source_instances[s]);  // objects a crop removed do not count
    const int64_t n = source.size(0);
    if (n == 0) continue;
    const int64_t count = n == 1 ? 1 : uniform_int(rng, 1, n - 1);
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(count);
    const double ratio = std::uniform_real_distribution<double>(options.scale_min, options.scale_max)(rng);
    const int64_t h = std::max<int64_t>(1, std::lround(ratio * height)), w = std::max<int64_t>(1, std::lround(ratio * width));
    const int64_t y = uniform_int(rng, 0, height - h), x = uniform_int(rng, 0, width - w);

    auto chosen = source.index_select(0, torch::tensor(order, torch::kLong)).to(torch::kFloat);
    auto small_masks = resize_bilinear(chosen.unsqueeze(0), h, w).squeeze(0).gt(0);
    auto small_image = resize_bilinear(source_images[s].unsqueeze(0), h, w).squeeze(0);
    auto masks = torch::zeros({count, height, width}, torch::kBool);
    masks.slice(1, y, y + h).slice(2, x, x + w).copy_(small_masks);
    masks = non_empty(masks);
    auto existing = instances[b].to(torch::kBool);
    if (existing.size(0) > 0 && masks.size(0) > 0) {
      // A pasted object covering >= 50 % of an existing one is dropped (CutLER's inter / area(existing)).
      auto inter = torch::matmul(masks.flatten(1).to(torch::kFloat), existing.flatten(1).to(torch::kFloat).t());
      auto covered = (inter / existing.flatten(1).sum(1).to(torch::kFloat).clamp_min(1)).ge(0.5).any(1);
      masks = masks.index_select(0, covered.logical_not().nonzero().squeeze(1));
    }
    if (masks.size(0) == 0) continue;
    auto pasted_union = masks.any(0);
    existing = non_empty(existing.logical_and(pasted_union.logical_not()));
    auto canvas = images[b].clone();
    canvas.slice(1, y, y + h).slice(2, x, x + w).copy_(small_image);
    images[b].copy_(torch::where(pasted_union.unsqueeze(0), canvas, images[b]));
    instances[b] = torch::cat({existing, masks}).to(torch::kUInt8);
    pasted += masks.size(0);
  }
  return pasted;
}

}  // namespace lesseg
