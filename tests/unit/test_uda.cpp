// The shared pieces of the adaptation methods: ClassMix keeps images, labels and weights aligned,
// the batch jitter only recolours and blurs, the confident fraction and the weighted loss against
// hand-computed values, weighted sampling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "lesseg/data/sampler.h"
#include "lesseg/methods/common/batch_jitter.h"
#include "lesseg/methods/common/mixing.h"
#include "lesseg/methods/common/pseudo_label.h"

namespace lesseg {
namespace {

TEST(ClassMix, ImagesLabelsAndWeightsStayAligned) {
  // Each image's red channel holds its pixel's label (source classes 0..5, target pseudo-labels
  // 6..9), so after mixing the label map can be read back from the image.
  torch::manual_seed(3);
  const auto source_labels = torch::randint(0, 6, {3, 16, 20}, torch::kLong);
  const auto target_labels = torch::randint(6, 10, {3, 16, 20}, torch::kLong);
  auto as_image = [](const at::Tensor& labels) {
    return torch::stack({labels.to(torch::kFloat), torch::zeros(labels.sizes()), torch::ones(labels.sizes())}, 1);
  };
  std::mt19937_64 rng(7);
  const auto mask = classmix_masks(source_labels, 255, rng);
  const auto images = mix(as_image(target_labels), as_image(source_labels), mask);
  const auto labels = mix(target_labels, source_labels, mask);
  const auto weights = mix(torch::full({3, 16, 20}, 0.25), torch::ones({3, 16, 20}), mask);
  EXPECT_TRUE(torch::equal(images.select(1, 0).to(torch::kLong), labels));
  EXPECT_TRUE(torch::equal(weights.eq(1), labels.lt(6)));  // weight 1 exactly where the pixel is the source's
  for (int64_t b = 0; b < 3; ++b) {
    // The mask is a set of whole source classes: ceil(n / 2) of those present.
    auto present = std::get<0>(at::_unique(source_labels[b].flatten()));
    auto taken = std::get<0>(at::_unique(source_labels[b].masked_select(mask[b])));
    EXPECT_EQ(taken.numel(), (present.numel() + 1) / 2);
    EXPECT_TRUE(torch::equal(mask[b], torch::isin(source_labels[b], taken)));
  }
}

TEST(BatchJitter, RecoloursAndBlursWithoutMovingPixels) {
  const std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  const auto m = torch::tensor({mean[0], mean[1], mean[2]}).view({1, 3, 1, 1});
  const auto s = torch::tensor({std[0], std[1], std[2]}).view({1, 3, 1, 1});
  // Left half dark, right half bright.
  auto raw = torch::full({2, 3, 20, 40}, 0.2);
  raw.slice(3, 20).fill_(0.8);
  const auto images = (raw - m) / s;
  BatchJitterOptions off;
  off.jitter_skip = 1.0;
  off.blur_probability = 0.0;
  std::mt19937_64 rng(1);
  EXPECT_TRUE(torch::allclose(jitter_and_blur(images, mean, std, off, rng), images, 1e-5, 1e-5));
  BatchJitterOptions on;
  on.jitter_skip = 0.0;  // always jitter and blur
  on.blur_probability = 1.0;
  for (int trial = 0; trial < 5; ++trial) {
    const auto out = jitter_and_blur(images, mean, std, on, rng) * s + m;
    ASSERT_EQ(out.sizes(), images.sizes());
    EXPECT_GE(out.min().item<double>(), -1e-5);
    EXPECT_LE(out.max().item<double>(), 1 + 1e-5);
    EXPECT_FALSE(torch::allclose(out, raw, 1e-3, 1e-3));
    // The edge stays between columns 19 and 20: far columns keep their side's brightness order.
    const auto left = out.slice(3, 0, 15).mean().item<double>(), right = out.slice(3, 25).mean().item<double>();
    EXPECT_LT(left, right);
  }
}

TEST(PseudoLabelWeight, ConfidentFractionAndWeightedLoss) {
  PseudoLabel label;
  label.label = torch::zeros({1, 2, 2}, torch::kLong);
  label.confidence = torch::tensor({0.99f, 0.5f, 0.97f, 0.96f}).view({1, 2, 2});
  EXPECT_DOUBLE_EQ(confident_fraction(label, 0.968), 0.5);
  const auto ignored = torch::tensor({false, true, false, false}).view({1, 2, 2});
  EXPECT_NEAR(confident_fraction(label, 0.968, ignored), 2.0 / 3.0, 1e-12);
  // Two classes, logits (0, log 3) -> p(class 1) = 0.75: CE = -log 0.25 for class 0, -log 0.75 for 1.
  auto logits = torch::zeros({1, 2, 2, 2});
  logits.select(1, 1).fill_(std::log(3.0));
  const auto labels = torch::tensor({0L, 1L, 255L, 1L}).view({1, 2, 2});
  const auto weights = torch::tensor({1.0f, 0.5f, 1.0f, 0.0f}).view({1, 2, 2});
  const double expected = (std::log(4.0) + 0.5 * std::log(4.0 / 3.0)) / 4.0;  // mean over all 4 pixels
  EXPECT_NEAR(weighted_cross_entropy(logits, labels, weights, 255).item<double>(), expected, 1e-6);
}

TEST(WeightedSampler, DrawsByWeightAndRepeatsForASeed) {
  ShardedSampler sampler(4, true, 9);
  sampler.set_weights({0.0, 1.0, 3.0, 0.0});
  std::vector<int> seen(4, 0);
  for (int epoch = 0; epoch < 500; ++epoch)
    for (size_t i : sampler.epoch_indices(epoch)) ++seen[i];
  EXPECT_EQ(seen[0] + seen[3], 0);
  // 2000 draws, P(2) = 0.75: 1500 expected, sd ~19.
  EXPECT_NEAR(seen[2], 1500, 100);
  EXPECT_EQ(sampler.epoch_indices(3), sampler.epoch_indices(3));
  ShardedSampler other(4, true, 9);
  other.set_weights({0.0, 1.0, 3.0, 0.0});
  EXPECT_EQ(other.epoch_indices(7), sampler.epoch_indices(7));
}

}  // namespace
}  // namespace lesseg
